"""Hostile payloads for the deliver half: every field the transforms read holds a hostile value.

Numbers past every range, times out of range, impossible or nearly ISO 8601,
markup, control and bidi characters, wrong types, nesting to the parser's
limit, fields of hundreds of KiB; for every provider (Twilio's as form
bodies), with unsigned type headers of any text.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from bench.fuzz.strategies import HEADER_CHARS, JSON_VALUES, next_nonce
from hookpress.providers import PROVIDERS

#: the deliver half: a source per provider, so every default transform meets hostile payloads
DELIVER_SOURCES: tuple[str, ...] = tuple(sorted(PROVIDERS))

#: the fields the default transforms read (hookpress.deliver.transforms)
TRANSFORM_KEYS: tuple[str, ...] = (
    "type",
    "status",
    "summary",
    "description",
    "message",
    "metadata",
    "occurred_at",
    "created_at",
    "created",
    "updated_at",
    "timestamp",
    "event_time",
    "data",
    "event",
    "object",
    "action",
    "repository",
    "sender",
    "name",
    "admin_graphql_api_id",
    "livemode",
    "api_version",
    "team_id",
    # the providers' transforms (Replicate, fal.ai, ElevenLabs, Clerk, Resend, Paddle)
    "completed_at",
    "model",
    "version",
    "error",
    "metrics",
    "request_id",
    "gateway_request_id",
    "event_timestamp",
    "instance_id",
    "event_type",
    "notification_id",
)
#: the fields they read one level down (data, data.object, event, metrics, repository, sender)
NESTED_KEYS: tuple[str, ...] = (
    "id",
    "object",
    "amount",
    "currency",
    "type",
    "text",
    "channel",
    "full_name",
    "login",
    "status",
    "conversation_id",
    "agent_id",
    "email_id",
    "predict_time",
)
#: the fields Twilio's transform reads from its form body (every value is text)
TWILIO_KEYS: tuple[str, ...] = (
    "MessageSid",
    "CallSid",
    "SmsSid",
    "MessageStatus",
    "CallStatus",
    "SmsStatus",
    "AccountSid",
    "ErrorCode",
)
#: numbers no transform expected: past every range, at every edge of IEEE and int64
HOSTILE_NUMBERS: tuple[int | float, ...] = (
    0,
    -0.0,
    1e20,
    -1e20,
    1e308,
    -1e308,
    5e-324,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**400,
    -(10**4000),
    253_402_300_800,  # 10000-01-01
    -62_135_596_801,  # one second before year 1
    1_700_000_000.999_999_9,
)
#: times as text: out of range, impossible, ambiguous, or only nearly ISO 8601
HOSTILE_TIMES: tuple[str, ...] = (
    "1e400",
    "-1e400",
    "9" * 30,
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "0000-00-00T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:00+99:99",
    "2026-01-01T00:00:00.123456789+00:00",
    "2026-01-01",
    "20260101T000000Z",
    "2026-W01-1",
    " 1700000000 ",
    "1_700_000_000",
    "+1700000000",
    "-1",
    "0x10",
    "NaN",
    "Infinity",
    "",
)
#: strings that have broken somebody's parser, template or database
HOSTILE_STRINGS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    "<!-- -->]]>",
    "' OR 1=1 --",
    "%00%0d%0a",
    "\u202e\u2066rtl",
    "\u2028\u2029",
    "\x00",
    "a\r\nb\tc\x7f",
    "\U0001f600" * 100,
    "\ufdfa" * 1000,
    "\\u0000\\",
    "{{7*7}}${7*7}",
    "${jndi:ldap://127.0.0.1/x}",
    "http://169.254.169.254/computeMetadata/v1/",
    "x" * 70_000,
)


class DeliverStrategies:
    """Signed payloads whose every field the transforms read is hostile."""

    def value(self) -> st.SearchStrategy[tuple[str, Any]]:
        """One hostile value and its kind."""
        offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
        times = st.sampled_from(HOSTILE_TIMES) | st.datetimes(timezones=offsets).map(
            lambda d: d.isoformat()
        )
        numbers = (
            st.sampled_from(HOSTILE_NUMBERS)
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
        )
        strings = st.sampled_from(HOSTILE_STRINGS) | st.text(max_size=300)
        return st.one_of(
            times.map(lambda v: ("time", v)),
            numbers.map(lambda v: ("number", v)),
            strings.map(lambda v: ("string", v)),
            JSON_VALUES.map(lambda v: ("wrong_type", v)),
            self.deep().map(lambda v: ("deep", v)),
            self.huge().map(lambda v: ("huge", v)),
        )

    @staticmethod
    def deep() -> st.SearchStrategy[Any]:
        """Objects and lists nested up to the strict parser's limit (64, the body included)."""

        @st.composite
        def build(draw: st.DrawFn) -> Any:
            depth = draw(st.integers(2, 58))  # under data.object.<field>: 4 levels already
            node: Any = draw(st.sampled_from([1, "x", None, [], {}]))
            for _ in range(depth):
                node = [node] if draw(st.booleans()) else {"a": node}
            return node

        return build()

    @staticmethod
    def huge() -> st.SearchStrategy[Any]:
        """A long string, a wide object or a long list: up to a few hundred KiB."""
        size = st.integers(1_000, 300_000)
        return st.one_of(
            size.map(lambda n: "y" * n),
            st.integers(100, 5_000).map(lambda n: {f"k{i}": i for i in range(n)}),
            st.integers(100, 20_000).map(lambda n: list(range(n))),
        )

    def payload(self) -> st.SearchStrategy[tuple[dict[str, Any], set[str]]]:
        """A JSON object with hostile values under the transforms' keys, and its kinds."""

        @st.composite
        def build(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
            kinds: set[str] = set()
            obj: dict[str, Any] = {}
            for key in draw(st.lists(st.sampled_from(TRANSFORM_KEYS), unique=True, max_size=8)):
                kind, obj[key] = draw(self.value())
                kinds.add(kind)
            parents = st.sampled_from(["data", "event", "metrics", "repository", "sender"])
            for parent in draw(st.lists(parents, unique=True, max_size=2)):
                names = draw(st.lists(st.sampled_from(NESTED_KEYS), unique=True, max_size=4))
                child = {name: draw(self.value())[1] for name in names}
                # Stripe reads data.object.<field>; the other providers data.<field>
                stripe_like = parent == "data" and draw(st.booleans())
                obj[parent] = {"object": child} if stripe_like else child
                kinds.add("nested")
            nonce = next_nonce()
            ident = draw(
                st.sampled_from(["", "<b>", "' OR 1=1 --", "\u202e", "\U0001f600", "x" * 200])
            )
            if draw(st.booleans()):
                obj["id"] = obj["event_id"] = f"fz{nonce}{ident}"[:256]
            else:
                obj["_nonce"] = nonce  # no id: the key comes from the body's hash
                kinds.add("no_id")
            return obj, kinds or {"empty"}

        return build()

    def form(self) -> st.SearchStrategy[tuple[bytes, set[str]]]:
        """Twilio's form body: its fields holding hostile text (a form holds nothing else)."""

        @st.composite
        def build(draw: st.DrawFn) -> tuple[bytes, set[str]]:
            kinds: set[str] = set()
            fields: dict[str, str] = {}
            for key in draw(st.lists(st.sampled_from(TWILIO_KEYS), unique=True, max_size=6)):
                kind, value = draw(self.value().filter(lambda kv: kv[0] != "huge"))
                text = value if isinstance(value, str) else json.dumps(value)
                fields[key] = text[:10_000]  # percent-encoded, well under the ingress's 1 MiB
                kinds.add(kind)
            fields["_nonce"] = next_nonce()  # the key is the body's hash: each case is new
            return urllib.parse.urlencode(fields).encode(), kinds or {"empty"}

        return build()

    def cases(self) -> st.SearchStrategy[DeliverCase]:
        """One source, one hostile payload, hostile unsigned headers where the scheme has them."""

        @st.composite
        def build(draw: st.DrawFn) -> DeliverCase:
            source = draw(st.sampled_from(DELIVER_SOURCES))
            if source == "twilio":
                body, kinds = draw(self.form())
                return DeliverCase(source, body, sorted(kinds), None)
            payload, kinds = draw(self.payload())
            body = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
            event_type = draw(
                st.none()
                | st.sampled_from(["push", "orders/create", "<x>", " ", "a" * 300])
                | st.text(HEADER_CHARS, max_size=40)
            )
            return DeliverCase(source, body, sorted(kinds), event_type)

        return build()


@dataclass
class DeliverCase:
    """One event for the deliver half: what is sent, and what the fuzzer knows about it."""

    source: str
    body: bytes
    kinds: list[str]
    event_type: str | None  # the unsigned type header, for the schemes that have one

    def describe(self) -> str:
        """Secret-free: the source, the kinds of hostility, the size."""
        return f"{self.source} kinds={self.kinds} body={len(self.body)}B"
