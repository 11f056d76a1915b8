"""Hostile requests and hostile payloads: ``nox -s fuzz`` and, shorter, tests/fuzz.

Two halves. The ingress half (100,000 cases; the suite runs 10,000) attacks
the public edge; the deliver half (2,000 cases; the suite runs 200) sends
payloads no transform expected through the ingress and the deliver function
into a real WordPress.

**The ingress half.**

Hypothesis builds requests for the real entry point (``functions/ingress/main.py``
under ``functions_framework.create_app(...).test_client()``) with healthy
emulator backends: genuinely signed events for every scheme, the same with one
thing broken (a truncated, flipped, re-cased, duplicated or dropped signature
header, a timestamp outside the window or not a number, a body changed after
signing, the wrong secret, another scheme's headers), random header soup,
strict-JSON traps under a valid signature, bodies at and over the size limit,
lying Content-Lengths, chunked bodies, content encodings, methods and paths.

Invariants checked on every case:

- never a 5xx (the backends are healthy), never a status outside the table;
- the status the table prescribes for the method, the path, the encoding and
  the size;
- an accepted answer (202, or 200 duplicate) only for a request whose
  signature an independent oracle verifies, and then the stored GCS object is
  the exact bytes sent and the record's ``body_sha256`` matches;
- a genuinely signed JSON object with nothing broken is accepted;
- no log line carries a secret or a signature.

After the run the backends are audited: every GCS object, Firestore record
and Pub/Sub message of the run belongs to an accepted, genuinely signed
request. The process's RSS is sampled after each batch (each batch is a fresh
hypothesis run, so the fuzzer's own bookkeeping does not accumulate).

**The deliver half** (:class:`DeliverFuzzer`). Genuinely signed JSON objects
for every provider (one source each, so every default transform is reached;
Twilio's are form bodies) whose fields the transforms read hold hostile values:
numbers past every range (``1e308``, ``10**4000``, ``2**64``), times out of
range, impossible or nearly ISO 8601 (``"1e400"``, year 1 at +14:00,
``"2026-02-30"``), markup, control and bidi characters, wrong types,
nesting to the parser's limit, fields of hundreds of KiB; and unsigned type
headers of any text. Each is accepted by the ingress, pushed to deliver,
and posted to WordPress (MariaDB and ``php -S``, the plugin as shipped).
Invariants on every case: the ingress accepts it (or answers 400 where the
provider's id, read from the payload, is unusable: fal.ai's status,
ElevenLabs' type), deliver answers 204 (never a 5xx), the event ends
``delivered`` or ``failed`` (with ``unusable_payload:…`` or WordPress's 4xx as
the reason), and the breaker's one probe slot is never left taken: every
batch starts with the breaker half-open. After every batch a normal event
must be delivered, close the breaker, and be one post in WordPress.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import gc
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bench._common import FUNCTIONS, RESULTS, machine, write_json, write_markdown
from hookpress.providers import PROVIDERS

__all__ = ["Case", "FuzzReport", "IngressFuzzer", "main"]

SOURCES: tuple[str, ...] = (
    "hmac-timestamp",
    "standard-webhooks",
    "stripe",
    "github",
    "slack",
    "shopify",
)
#: the deliver half: a source per provider, so every default transform meets hostile payloads
DELIVER_SOURCES: tuple[str, ...] = tuple(sorted(PROVIDERS))
#: the public URL a source is configured with (Twilio signs the URL it calls)
PUBLIC_URL = "https://hooks.example.com/hookpress"
MAX_BODY = 1024 * 1024
TOLERANCE = 300
KNOWN_STATUSES = frozenset({200, 202, 400, 401, 404, 405, 413, 415})
SIGNATURE_HEADERS: Mapping[str, tuple[str, ...]] = {
    "hmac-timestamp": ("x-provider-signature", "x-provider-timestamp"),
    "standard-webhooks": ("webhook-id", "webhook-timestamp", "webhook-signature"),
    "stripe": ("stripe-signature",),
    "github": ("x-hub-signature-256", "x-github-delivery", "x-github-event"),
    "slack": ("x-slack-signature", "x-slack-request-timestamp"),
    "shopify": ("x-shopify-hmac-sha256", "x-shopify-webhook-id", "x-shopify-topic"),
}
ALL_SIGNATURE_HEADERS = sorted({h for names in SIGNATURE_HEADERS.values() for h in names})
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"
_HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_NONCE = itertools.count()


def _nonce() -> str:
    """A fresh number of fixed width. Hypothesis replays cases while it explores; a
    nonce that grows a digit would change a body's length between a case and its
    replay, and with it the bounds of the next draw (FlakyStrategyDefinition)."""
    return f"{next(_NONCE):010d}"


def _public_url(source: str) -> str:
    return f"{PUBLIC_URL}/{source}"


class InvariantBroken(AssertionError):
    """A case broke one of the invariants; the message says which and how."""


# -- the oracle -------------------------------------------------------------------


def _seen_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers as the ingress sees them: lower-case names, repeats joined by ", "."""
    seen: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        seen[key] = f"{seen[key]}, {value}" if key in seen else value
    return seen


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hexbytes(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        return None


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _fresh(ts: str, now: float) -> bool:
    ts = ts.strip()
    return ts.isascii() and ts.isdigit() and abs(int(ts) - now) <= TOLERANCE + 2


def genuine(
    scheme: str, headers: Mapping[str, str], body: bytes, keys: Sequence[str], now: float
) -> bool:
    """Whether the request carries a MAC that only a holder of one of ``keys`` could make.

    Written from the providers' documentation, independently of
    ``hookpress.signatures``, and lenient about encodings (case, padding,
    whitespace): it answers "did the sender know the secret, within the
    timestamp window", which is what acceptance must imply.
    """
    h = headers
    if scheme == "hmac-timestamp":
        ts = h.get("x-provider-timestamp", "").strip()
        sig = _b64(h.get("x-provider-signature", ""))
        if not _fresh(ts, now) or sig is None:
            return False
        return any(sig == _mac(k.encode(), ts.encode() + b"." + body) for k in keys)
    if scheme == "standard-webhooks":
        ts = h.get("webhook-timestamp", "").strip()
        msg_id = h.get("webhook-id", "")
        if not _fresh(ts, now):
            return False
        sigs = [
            _b64(v.split(",", 1)[1])
            for v in h.get("webhook-signature", "").split()
            if v.startswith("v1,")
        ]
        signed = f"{msg_id}.{ts}.".encode() + body
        for k in keys:
            raw = _b64(k.removeprefix("whsec_")) or b""
            if any(s == _mac(raw, signed) for s in sigs if s):
                return True
        return False
    if scheme == "stripe":
        items = [i.strip().partition("=") for i in h.get("stripe-signature", "").split(",")]
        stamps = [v for k, _, v in items if k == "t"]
        sigs = [_hexbytes(v) for k, _, v in items if k == "v1"]
        if len(stamps) != 1 or not _fresh(stamps[0], now):
            return False
        return any(
            s == _mac(k.encode(), stamps[0].encode() + b"." + body) for k in keys for s in sigs
        )
    if scheme == "github":
        prefix, _, value = h.get("x-hub-signature-256", "").strip().partition("=")
        sig = _hexbytes(value)
        return prefix == "sha256" and any(sig == _mac(k.encode(), body) for k in keys)
    if scheme == "slack":
        ts = h.get("x-slack-request-timestamp", "").strip()
        prefix, _, value = h.get("x-slack-signature", "").strip().partition("=")
        sig = _hexbytes(value)
        if prefix != "v0" or not _fresh(ts, now):
            return False
        return any(sig == _mac(k.encode(), f"v0:{ts}:".encode() + body) for k in keys)
    if scheme == "shopify":
        sig = _b64(h.get("x-shopify-hmac-sha256", ""))
        return sig is not None and any(sig == _mac(k.encode(), body) for k in keys)
    raise ValueError(scheme)


# -- cases ------------------------------------------------------------------------


@dataclass
class Case:
    """One request, and what the fuzzer knows about it."""

    kind: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None  # a Content-Length that differs from the body
    chunked: bool = False  # no Content-Length at all: the server reads to the end
    pristine: bool = False  # genuinely signed JSON object, nothing broken: must be accepted

    def describe(self) -> str:
        """A short, secret-free description for failure messages."""
        names = [n for n, _ in self.headers]
        return (
            f"{self.kind} {self.method} {self.path[:80]!r} headers={names} "
            f"body={len(self.body)}B declared={self.declared_length} chunked={self.chunked}"
        )


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
#: Bodies the strict parser must refuse (400) even under a valid signature.
NASTY_BODIES: tuple[bytes, ...] = (
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b"42",
    b'{"id": "x", "id": "y"}',
    b'{"id": NaN}',
    b'{"n": Infinity}',
    b'{"n": -Infinity}',
    b'{"s": "\\ud800"}',
    b'{"s": "\\udfff\\ud800"}',
    b"\xef\xbb\xbf{}",
    b'{"a": 1} trailing',
    b'{"a": 1',
    b"{'a': 1}",
    b"\xff\xfe{}",
    b'{"s": "\xc3\x28"}',
    b'{"a": [' * 70 + b"1" + b"]" * 70 + b"}",
    b'{"a": ' * 100 + b"1" + b"}" * 100,
    b'{"id": ""}',
    b'{"id": "' + b"x" * 300 + b'"}',
    b'{"id": "a\\nb"}',
    b'{"id": true}',
    b'{"event_id": "a\\u0000b", "id": "a\\u0000b"}',
    b'{"type": "url_verification", "challenge": ""}',
    b'{"type": "url_verification", "challenge": 7}',
)
_TS_GARBAGE = (
    "",
    " ",
    "-1",
    "+1700000000",
    "1e9",
    "0x10",
    "9" * 16,
    "9" * 40,
    "\u0661\u0667\u0660\u0660",
    "1700000000.5",
    "NaN",
    "None",
    "01",
)
_ENCODINGS = (
    "gzip",
    "deflate",
    "br",
    "x-gzip",
    "compress",
    "zstd",
    "gzip, identity",
    "identity;q=0",
)
_METHODS = ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO")


class Strategies:
    """Strategies bound to one run's secrets."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self.keys = keys

    def json_payload(self) -> st.SearchStrategy[bytes]:
        """A JSON object with a fresh, valid id (and the same as Slack's ``event_id``)."""

        @st.composite
        def build(draw: st.DrawFn) -> bytes:
            extra = draw(st.dictionaries(st.text(max_size=10), _JSON_VALUES, max_size=4))
            for reserved in ("id", "event_id", "type", "challenge"):
                extra.pop(reserved, None)
            ident = draw(st.text(alphabet=_ID_CHARS, min_size=1, max_size=24))
            nonce = _nonce()
            obj = {"id": f"fz_{ident}_{nonce}", "event_id": f"Ev{ident}{nonce}", **extra}
            if draw(st.booleans()):
                obj["type"] = draw(st.sampled_from(["order.paid", "batch.completed", "x"]))
            return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()

        return build()

    def _sign(
        self,
        source: str,
        body: bytes,
        *,
        secret: str,
        offset: float,
        delivery_id: str | None,
    ) -> list[tuple[str, str]]:
        from hookpress.signatures import SCHEMES

        signed = SCHEMES[source].sign(
            body, secret, now=time.time() + offset, delivery_id=delivery_id
        )
        return [("Content-Type", "application/json"), *signed.items()]

    def signed(
        self, bodies: st.SearchStrategy[bytes] | None = None, kind: str = "signed"
    ) -> st.SearchStrategy[Case]:
        """A genuinely signed request for a configured source."""
        body_strategy = bodies if bodies is not None else self.json_payload()

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            source = draw(st.sampled_from(SOURCES))
            body = draw(body_strategy)
            secret = draw(st.sampled_from(list(self.keys[source])))
            offset = draw(st.integers(-(TOLERANCE - 10), TOLERANCE - 10))
            delivery = draw(st.none() | st.text(alphabet=_ID_CHARS, min_size=1, max_size=40))
            if delivery is not None:
                delivery = f"{delivery}-{_nonce()}"
            headers = self._sign(source, body, secret=secret, offset=offset, delivery_id=delivery)
            path = draw(st.sampled_from([f"/{source}", f"/{source}/"]))
            return Case(kind, "POST", path, headers, body, pristine=bodies is None)

        return build()

    def mutated(self) -> st.SearchStrategy[Case]:
        """A signed request with exactly one thing broken (or harmlessly changed)."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="mutated"))
            case.pristine = False
            source = case.path.strip("/")
            mutation = draw(
                st.sampled_from(
                    [
                        "truncate",
                        "flip",
                        "swapcase",
                        "drop",
                        "empty",
                        "whitespace",
                        "duplicate",
                        "stale",
                        "ts_garbage",
                        "body_flip",
                        "body_append",
                        "body_truncate",
                        "wrong_secret",
                        "other_scheme",
                        "extra_entry",
                        "prefix",
                        "id_change",
                    ]
                )
            )
            case.kind = f"mutated:{mutation}"
            sig_names = [n for n, _ in case.headers if n.lower() in SIGNATURE_HEADERS[source]]
            target = draw(st.sampled_from(sig_names))
            idx = next(i for i, (n, _) in enumerate(case.headers) if n == target)
            name, value = case.headers[idx]
            if mutation == "truncate":
                cut = draw(st.integers(0, max(0, len(value) - 1)))
                case.headers[idx] = (name, value[:cut])
            elif mutation == "flip" and value:
                pos = draw(st.integers(0, len(value) - 1))
                char = draw(_HEADER_CHARS)
                case.headers[idx] = (name, value[:pos] + char + value[pos + 1 :])
            elif mutation == "swapcase":
                case.headers[idx] = (name, value.swapcase())
            elif mutation == "drop":
                del case.headers[idx]
            elif mutation == "empty":
                case.headers[idx] = (name, draw(st.sampled_from(["", " ", "\t"])))
            elif mutation == "whitespace":
                pad = draw(st.sampled_from([" ", "\t", "  "]))
                where = draw(st.sampled_from(["both", "inside"]))
                mid = len(value) // 2
                new = f"{pad}{value}{pad}" if where == "both" else value[:mid] + pad + value[mid:]
                case.headers[idx] = (name, new)
            elif mutation == "duplicate":
                other = draw(st.sampled_from([value, "", "garbage", value[::-1]]))
                case.headers.insert(idx + draw(st.integers(0, 1)), (name, other))
            elif mutation == "stale":
                shift = draw(st.integers(TOLERANCE + 5, 10**9)) * draw(st.sampled_from([-1, 1]))
                secret = self.keys[source][0]
                case.headers = self._sign(
                    source, case.body, secret=secret, offset=shift, delivery_id=None
                )
            elif mutation == "ts_garbage":
                ts_names = [n for n, _ in case.headers if "timestamp" in n.lower()]
                garbage = draw(st.sampled_from(_TS_GARBAGE))
                if ts_names:
                    j = next(i for i, (n, _) in enumerate(case.headers) if n == ts_names[0])
                    case.headers[j] = (ts_names[0], garbage)
                elif source == "stripe":
                    case.headers[idx] = (name, re.sub(r"t=\d+", f"t={garbage}", value))
                else:
                    case.headers[idx] = (name, garbage)
            elif mutation == "body_flip" and case.body:
                pos = draw(st.integers(0, len(case.body) - 1))
                byte = draw(st.integers(0, 255))
                case.body = case.body[:pos] + bytes([byte]) + case.body[pos + 1 :]
            elif mutation == "body_append":
                case.body += draw(st.sampled_from([b" ", b"\n", b"\x00", b"{}", b"x"]))
            elif mutation == "body_truncate":
                case.body = case.body[: draw(st.integers(0, max(0, len(case.body) - 1)))]
            elif mutation == "wrong_secret":
                from hookpress.local.stack import generate_secret

                case.headers = self._sign(
                    source, case.body, secret=generate_secret(source), offset=0, delivery_id=None
                )
            elif mutation == "other_scheme":
                other = draw(st.sampled_from([s for s in SOURCES if s != source]))
                secret = draw(st.sampled_from(list(self.keys[source]) + list(self.keys[other])))
                case.headers = self._sign(
                    other, case.body, secret=secret, offset=0, delivery_id=None
                )
            elif mutation == "extra_entry":
                junk = draw(
                    st.sampled_from(
                        ["v1,", "v1", "v1,a,b", "v1=zz", "t=1", ",", "v1,!!!!", "v0,AAAA"]
                    )
                )
                sep = " " if source == "standard-webhooks" else ","
                case.headers[idx] = (name, f"{value}{sep}{junk}")
            elif mutation == "prefix":
                case.headers[idx] = (
                    name,
                    draw(st.sampled_from(["sha1=", "v1=", "v0:", "SHA256=", "=", "t="])) + value,
                )
            elif mutation == "id_change":
                id_names = [
                    n
                    for n, _ in case.headers
                    if n.lower() in {"webhook-id", "x-github-delivery", "x-shopify-webhook-id"}
                ]
                if id_names:
                    j = next(i for i, (n, _) in enumerate(case.headers) if n == id_names[0])
                    new_id = draw(st.text(_HEADER_CHARS, max_size=300))
                    case.headers[j] = (id_names[0], new_id)
            return case

        return build()

    def soup(self) -> st.SearchStrategy[Case]:
        """Random headers from every scheme's vocabulary, random values, random bodies."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            source = draw(st.sampled_from(SOURCES))
            names = draw(st.lists(st.sampled_from(ALL_SIGNATURE_HEADERS), max_size=5))
            values = st.text(_HEADER_CHARS, max_size=120) | st.sampled_from(
                [
                    "v1,AAAA",
                    "t=1,v1=00",
                    "sha256=" + "0" * 64,
                    "v0=" + "f" * 64,
                    "A" * 43 + "=",
                    str(int(time.time())),
                ]
            )
            headers = [(n, draw(values)) for n in names]
            body = draw(st.binary(max_size=256) | self.json_payload())
            return Case("soup", "POST", f"/{source}", headers, body)

        return build()

    def strict_json(self) -> st.SearchStrategy[Case]:
        """Bodies the strict parser must refuse, under a genuine signature."""
        return self.signed(
            st.sampled_from(NASTY_BODIES) | st.binary(max_size=128), kind="strict_json"
        )

    def sizes(self) -> st.SearchStrategy[Case]:
        """Bodies at and over the limit, lying lengths, chunked transfer."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            variant = draw(
                st.sampled_from(
                    ["at_limit", "over_limit", "far_over", "lie_long", "lie_short", "chunked"]
                )
            )
            if variant in {"at_limit", "over_limit", "far_over"}:
                size = {
                    "at_limit": MAX_BODY - draw(st.integers(0, 2)),
                    "over_limit": MAX_BODY + draw(st.integers(1, 3)),
                    "far_over": MAX_BODY * draw(st.integers(2, 4)),
                }[variant]
                nonce = _nonce().encode()
                pad = size - len(b'{"id":"big","p":""}') - len(nonce)
                body = b'{"id":"big' + nonce + b'","p":"' + b"a" * max(0, pad) + b'"}'
                case = draw(self.signed(st.just(body), kind=f"size:{variant}"))
                case.pristine = False
                return case
            case = draw(self.signed(kind=f"size:{variant}"))
            case.pristine = False
            if variant == "lie_long":
                case.declared_length = len(case.body) + draw(st.integers(1, 10_000))
            elif variant == "lie_short":
                case.declared_length = draw(st.integers(0, max(0, len(case.body) - 1)))
            else:
                case.chunked = True
                case.pristine = True  # a chunked, genuinely signed event is still an event
            return case

        return build()

    def encodings(self) -> st.SearchStrategy[Case]:
        """A genuine request with a Content-Encoding."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="encoding"))
            enc = draw(
                st.sampled_from(_ENCODINGS) | st.text(_HEADER_CHARS, min_size=1, max_size=20)
            )
            case.headers.append(("Content-Encoding", enc))
            case.pristine = enc.strip().lower() in {"", "identity"}
            return case

        return build()

    def routes(self) -> st.SearchStrategy[Case]:
        """Other methods, unknown and odd paths (signed or not)."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="route"))
            case.pristine = False
            if draw(st.booleans()):
                case.method = draw(st.sampled_from(_METHODS))
                case.kind = "route:method"
            else:
                segment = draw(
                    st.text(
                        st.characters(
                            min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%"
                        ),
                        max_size=40,
                    )
                    | st.sampled_from(
                        [
                            "",
                            "STRIPE",
                            "stripe%2F",
                            "%73tripe",
                            "stripe/x",
                            "../stripe",
                            "stripe.json",
                            "a" * 300,
                        ]
                    )
                )
                # A leading "//" would make the test client read a host name out of the path.
                case.path = "/" + segment.lstrip("/")
                case.kind = "route:path"
            return case

        return build()

    def cases(self) -> st.SearchStrategy[Case]:
        """The mixture: most cases never reach the backends."""
        weighted: list[tuple[int, st.SearchStrategy[Case]]] = [
            (2, self.signed()),
            (34, self.mutated()),
            (30, self.soup()),
            (10, self.strict_json()),
            (2, self.sizes()),
            (8, self.encodings()),
            (14, self.routes()),
        ]
        pool = [strategy for weight, strategy in weighted for _ in range(weight)]
        return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# -- the target -------------------------------------------------------------------


def hypothesis_run(
    strategy: st.SearchStrategy[Any], check: Callable[[Any], None], size: int, batch_seed: int
) -> None:
    """``size`` cases of ``strategy`` through ``check``: seeded, no database, no deadline."""

    @seed(batch_seed)
    @settings(
        max_examples=size,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    run()


class _LogSink(io.TextIOBase):
    """Collects the ingress's log lines (stdout) so they can be checked, not printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, s: str) -> int:
        self.lines.append(s)
        return len(s)


@dataclass
class FuzzReport:
    """Counts of one run."""

    cases: int = 0
    batches: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_seconds: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    new_events: int = 0
    reached_backends: int = 0
    pristine: int = 0
    rss_mib: list[float] = field(default_factory=list)
    seconds: float = 0.0
    audit: dict[str, int] = field(default_factory=dict)

    @property
    def rss_growth_mib(self) -> float:
        """Median RSS over the last quarter of the batches minus that over the first quarter.

        Medians, because a batch that happens to hold a few 4 MiB bodies at its
        end lifts one sample without saying anything about a leak.
        """
        if len(self.rss_mib) < 2:
            return 0.0
        q = max(1, len(self.rss_mib) // 4)
        return statistics.median(self.rss_mib[-q:]) - statistics.median(self.rss_mib[:q])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "cases": self.cases,
            "batches": self.batches,
            "seconds": round(self.seconds, 1),
            "cases_per_second": round(self.cases / self.seconds, 1) if self.seconds else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "kinds": dict(sorted(self.kinds.items())),
            "request_ms_by_kind": {
                k: round(1000 * self.kind_seconds[k] / n, 2) for k, n in sorted(self.kinds.items())
            },
            "accepted": self.accepted,
            "new_events": self.new_events,
            "reached_backends": self.reached_backends,
            "pristine": self.pristine,
            "rss_mib_after_each_batch": [round(x, 1) for x in self.rss_mib],
            "rss_growth_mib": round(self.rss_growth_mib, 1),
            "audit": self.audit,
        }


class IngressFuzzer:
    """The ingress entry point against the emulators, with a fresh bucket, collection and topic.

    ``sources``: one source per provider, named after it (the ingress half: the
    six original schemes; the deliver half: every provider).
    """

    def __init__(self, project: str, workdir: Path, sources: Sequence[str] = SOURCES) -> None:
        import functions_framework
        from google.cloud import pubsub_v1

        from hookpress import ingress
        from hookpress.local.emulators import ensure_bucket, ensure_topic
        from hookpress.local.stack import generate_keys

        tag = f"fuzz-{secrets.token_hex(4)}"
        self.project = project
        self.tag = tag
        self.sources = tuple(sources)
        pairs = {s: [generate_keys(s), generate_keys(s)] for s in self.sources}
        #: what the ingress holds (for the HMAC schemes, also what signs)
        self.keys: dict[str, list[str]] = {s: [k.verify for k in ks] for s, ks in pairs.items()}
        #: what a provider signs with (a private key for the asymmetric ones)
        self.signing: dict[str, str] = {s: ks[0].sign for s, ks in pairs.items()}
        secrets_file = workdir / f"{tag}-secrets.json"
        secrets_file.write_text(json.dumps({f"{tag}-{s}": v for s, v in self.keys.items()}))
        ensure_bucket(project, tag)
        topic = ensure_topic(project, tag)
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscription = self.subscriber.subscription_path(project, tag)
        self.subscriber.create_subscription(request={"name": self.subscription, "topic": topic})
        self.env = {
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_SOURCES": json.dumps(
                {
                    s: {"provider": s, "secret": f"{tag}-{s}", "url": _public_url(s)}
                    for s in self.sources
                }
            ),
            "HOOKPRESS_RAW_BUCKET": tag,
            "HOOKPRESS_EVENTS_TOPIC": tag,
            "HOOKPRESS_EVENTS_COLLECTION": tag,
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
            "HOOKPRESS_BACKEND_TIMEOUT_S": "10",
        }
        self.ingestor = ingress.build_ingestor(self.env)
        ingress.install(self.ingestor)
        app = functions_framework.create_app(
            target="ingress", source=str(FUNCTIONS / "ingress" / "main.py")
        )
        self.client = app.test_client()
        self.accepted_keys: set[str] = set()
        self.report = FuzzReport()
        self._secret_values = [v for vs in self.keys.values() for v in vs]
        self._secret_values += list(self.signing.values())

    def close(self) -> None:
        """Uninstall the ingestor and delete the subscription."""
        from hookpress import ingress

        ingress.install(None)
        with contextlib.suppress(Exception):
            self.subscriber.delete_subscription(request={"subscription": self.subscription})

    # -- one case -------------------------------------------------------------

    def _send(self, case: Case, sink: _LogSink) -> Any:
        overrides: dict[str, Any] = {}
        kwargs: dict[str, Any] = {"headers": case.headers}
        if case.chunked:
            kwargs["input_stream"] = io.BytesIO(case.body)
            overrides["wsgi.input_terminated"] = True
            overrides["CONTENT_LENGTH"] = ""
        else:
            kwargs["data"] = case.body
            if case.declared_length is not None:
                overrides["CONTENT_LENGTH"] = str(case.declared_length)
        with contextlib.redirect_stdout(sink):
            return self.client.open(
                case.path, method=case.method, environ_overrides=overrides, **kwargs
            )

    def check(self, case: Case) -> None:
        """Send one case and check every invariant; raise InvariantBroken."""
        sink = _LogSink()
        started = time.time()
        response = self._send(case, sink)
        status = response.status_code
        report = self.report
        report.cases += 1
        report.statuses[status] += 1
        kind = case.kind.split(":")[0]
        report.kinds[kind] += 1
        report.kind_seconds[kind] += time.time() - started

        def fail(why: str) -> None:
            raise InvariantBroken(f"{why}: got {status} for {case.describe()}")

        if status >= 500:
            fail("a 5xx with healthy backends")
        if status == 308 and "//" in case.path:
            # Flask merges repeated slashes with a redirect before any of our code runs.
            return self._check_logs(case, sink)
        if status not in KNOWN_STATUSES:
            fail("a status outside the table")
        seen = _seen_headers(case.headers)
        name = urllib.parse.unquote(case.path).strip("/")
        encoding = seen.get("content-encoding", "").strip().lower()
        size = len(case.body) if case.declared_length is None else case.declared_length
        if case.method != "POST":
            if status != 405:
                fail("not POST but not 405")
            return self._check_logs(case, sink)
        if name not in self.sources:
            if status != 404:
                fail("unknown source but not 404")
            return self._check_logs(case, sink)
        if encoding not in {"", "identity"}:
            if status != 415:
                fail("a content encoding but not 415")
            return self._check_logs(case, sink)
        if size > MAX_BODY or (case.chunked and len(case.body) > MAX_BODY):
            if status != 413:
                fail("over the limit but not 413")
            return self._check_logs(case, sink)
        if status in {202, 200} and response.is_json and "event_id" in (response.get_json() or {}):
            received = case.body
            if case.declared_length is not None:
                received = case.body[: case.declared_length]
            if not (
                genuine(name, seen, received, self.keys[name], started)
                or genuine(name, seen, received, self.keys[name], time.time())
            ):
                fail("ACCEPTED WITHOUT A VALID SIGNATURE")
            self._check_stored(case, response.get_json()["event_id"], received, status)
        elif case.pristine:
            fail("a genuinely signed event was not accepted")
        self._check_logs(case, sink)
        return None

    def _check_stored(self, case: Case, key: str, body: bytes, status: int) -> None:
        report = self.report
        report.accepted += 1
        report.reached_backends += 1
        if status == 202:
            report.new_events += 1
        if case.pristine:
            report.pristine += 1
        self.accepted_keys.add(key)
        record = self.ingestor.records.get(key)
        if record is None:
            raise InvariantBroken(f"accepted but no record: {case.describe()}")
        if status != 202:
            return  # a duplicate: the first request's bytes are the ones kept
        if record.data.get("body_sha256") != hashlib.sha256(body).hexdigest():
            raise InvariantBroken(
                f"record body_sha256 differs from the bytes sent: {case.describe()}"
            )
        raw = self.ingestor.raw
        stored = raw.get(raw.name_of(str(record.data.get("raw_uri"))))
        if stored != body:
            raise InvariantBroken(f"stored bytes differ from the bytes sent: {case.describe()}")

    def _check_logs(self, case: Case, sink: _LogSink) -> None:
        text = "".join(sink.lines)
        secret_bits = list(self._secret_values)
        for _, value in case.headers:
            if len(value) >= 24 and ("=" in value or "," in value or len(value) >= 40):
                secret_bits.append(value.strip())
        for bit in secret_bits:
            if bit and len(bit) >= 16 and bit in text:
                raise InvariantBroken(f"a secret or signature in the log: {case.describe()}")

    # -- batches and the audit -------------------------------------------------

    def run_batch(self, size: int, batch_seed: int) -> None:
        """One hypothesis run of ``size`` cases."""
        hypothesis_run(Strategies(self.keys).cases(), self.check, size, batch_seed)
        self.report.batches += 1

    def audit(self) -> dict[str, int]:
        """Every stored object, record and message belongs to an accepted request."""
        from google.api_core import exceptions as gexc

        raw = self.ingestor.raw
        names = raw.list("raw/")
        object_keys = {n.rsplit("/", 1)[1].removesuffix(".json") for n in names}
        record_keys = {d.id for d in self.ingestor.records.collection().list_documents()}
        message_keys: list[str] = []
        while True:
            try:
                resp = self.subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": 1000}, timeout=10
                )
            except gexc.DeadlineExceeded:
                break
            if not resp.received_messages:
                break
            message_keys += [
                json.loads(m.message.data)["event_key"] for m in resp.received_messages
            ]
            self.subscriber.acknowledge(
                request={
                    "subscription": self.subscription,
                    "ack_ids": [m.ack_id for m in resp.received_messages],
                }
            )
        audit = {
            "accepted_keys": len(self.accepted_keys),
            "gcs_objects": len(object_keys),
            "firestore_records": len(record_keys),
            "pubsub_messages": len(message_keys),
            "pubsub_distinct_keys": len(set(message_keys)),
            "objects_not_accepted": len(object_keys - self.accepted_keys),
            "records_not_accepted": len(record_keys - self.accepted_keys),
            "messages_not_accepted": len(set(message_keys) - self.accepted_keys),
            "accepted_without_record": len(self.accepted_keys - record_keys),
            "accepted_without_object": len(self.accepted_keys - object_keys),
            "accepted_without_message": len(self.accepted_keys - set(message_keys)),
            "messages_duplicated": len(message_keys) - len(set(message_keys)),
        }
        self.report.audit = audit
        broken = {
            k: v
            for k, v in audit.items()
            if k.endswith(
                (
                    "_not_accepted",
                    "_without_record",
                    "_without_object",
                    "_without_message",
                    "_duplicated",
                )
            )
            and v
        }
        if broken:
            raise InvariantBroken(f"the backends hold what no accepted request explains: {broken}")
        return audit


def rss_mib() -> float:
    """This process's resident set size."""
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


def run(
    fuzzer: IngressFuzzer,
    cases: int,
    batch: int,
    base_seed: int,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Run ``cases`` cases in batches; sample RSS after each; audit the backends at the end."""
    started = time.monotonic()
    done = 0
    index = 0
    while done < cases:
        size = min(batch, cases - done)
        before = fuzzer.report.cases
        fuzzer.run_batch(size, base_seed + index)
        done += fuzzer.report.cases - before
        index += 1
        gc.collect()
        fuzzer.report.rss_mib.append(rss_mib())
        if progress:
            rss, elapsed = fuzzer.report.rss_mib[-1], time.monotonic() - started
            progress(f"{done:,} cases, RSS {rss:.0f} MiB, {elapsed:.0f} s")
    fuzzer.audit()
    fuzzer.report.seconds = time.monotonic() - started
    return fuzzer.report


# -- the deliver half: hostile payloads through ingress and deliver into WordPress -------------

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
            _JSON_VALUES.map(lambda v: ("wrong_type", v)),
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
            nonce = _nonce()
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
            fields["_nonce"] = _nonce()  # the key is the body's hash: each case is new
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
                | st.text(_HEADER_CHARS, max_size=40)
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


@dataclass
class DeliverReport:
    """Counts of one deliver run."""

    cases: int = 0
    batches: int = 0
    ingress_statuses: Counter[int] = field(default_factory=Counter)
    ingress_refused: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    deliver_statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failed_reasons: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    half_open_batches: int = 0
    sentinels_delivered: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "cases": self.cases,
            "batches": self.batches,
            "seconds": round(self.seconds, 1),
            "cases_per_second": round(self.cases / self.seconds, 2) if self.seconds else None,
            "ingress_statuses": {str(k): v for k, v in sorted(self.ingress_statuses.items())},
            "ingress_refused": dict(sorted(self.ingress_refused.items())),
            "sources": dict(sorted(self.sources.items())),
            "deliver_statuses": {str(k): v for k, v in sorted(self.deliver_statuses.items())},
            "deliver_5xx": sum(v for k, v in self.deliver_statuses.items() if k >= 500),
            "outcomes": dict(sorted(self.outcomes.items())),
            "non_final": sum(
                v
                for k, v in self.outcomes.items()
                if k not in {"delivered", "failed", "refused_at_ingress"}
            ),
            "failed_reasons": dict(self.failed_reasons.most_common()),
            "kinds": dict(sorted(self.kinds.items())),
            "half_open_batches": self.half_open_batches,
            "sentinels_delivered": self.sentinels_delivered,
        }


class DeliverFuzzer:
    """The ingress and the deliver entry points in this process, WordPress for real.

    Each case is signed for one of the providers, accepted by the ingress
    (its own fresh bucket, collection and topic, as :class:`IngressFuzzer`),
    then pushed to the deliver function, which calls the real WordPress.
    Every batch starts with the breaker half-open (opened by WordPress
    failures, cooled down), so a payload that took and kept the probe slot
    would show as a 503 at the next case. After every batch a normal event
    must be delivered and readable in WordPress.
    """

    def __init__(self, project: str, workdir: Path, site: Any) -> None:
        import functions_framework

        from hookpress import deliver
        from hookpress.deliver import Breaker

        self.site = site
        self.ingress = IngressFuzzer(project, workdir, DELIVER_SOURCES)
        tag = self.ingress.tag
        secrets_file = workdir / f"{tag}-wp-secrets.json"
        secrets_file.write_text(json.dumps({f"{tag}-wp": [site.app_password]}))
        secrets_file.chmod(0o600)
        self.env = {
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_RAW_BUCKET": tag,
            "HOOKPRESS_EVENTS_COLLECTION": tag,
            "HOOKPRESS_CONTROL_COLLECTION": f"{tag}-control",
            "HOOKPRESS_WP_BASE_URL": site.rest_base,
            "HOOKPRESS_WP_USER": site.ingest_user,
            "HOOKPRESS_WP_APP_PASSWORD_SECRET": f"{tag}-wp",
            "HOOKPRESS_PUSH_AUTH": "none",
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        }
        with contextlib.redirect_stdout(_LogSink()):
            self.runtime = deliver.build_runtime(self.env)
        self.clock = _ManualClock()
        self.breaker = Breaker(3, 30, self.clock)
        self.runtime.deliverer.breaker = self.breaker
        deliver.install(self.runtime)
        app = functions_framework.create_app(
            target="deliver", source=str(FUNCTIONS / "deliver" / "main.py")
        )
        self.client = app.test_client()
        self.report = DeliverReport()

    def close(self) -> None:
        """Uninstall both functions, close WordPress's connection pool."""
        from hookpress import deliver

        deliver.install(None)
        self.runtime.deliverer.wordpress.close()
        self.ingress.close()

    # -- one case ---------------------------------------------------------------

    def _accept(self, source: str, body: bytes, event_type: str | None) -> str | None:
        """Send through the ingress: the event key, or None for a documented refusal.

        The ingress must accept a signed object, except one whose provider id is
        present but unusable (``fal``'s status, ``elevenlabs``' type and
        conversation id are read from the payload): that is a 400, never a
        silently different key (DESIGN.md), and nothing reaches deliver.
        """
        from hookpress.events import InvalidPayloadId
        from hookpress.payloads import MalformedBody, parse_payload

        provider = PROVIDERS[source]
        scheme = provider.scheme
        form = scheme.name == "twilio"
        signed = scheme.sign(body, self.ingress.signing[source], now=time.time(),
                             delivery_id=f"fz-{_nonce()}", url=_public_url(source))  # fmt: skip
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        headers = {"Content-Type": content_type, **signed}
        type_header = scheme.type_header
        if type_header:
            headers.pop(next(h for h in headers if h.lower() == type_header), None)
            if event_type is not None:
                headers[type_header] = event_type
        with contextlib.redirect_stdout(_LogSink()):
            resp = self.ingress.client.post(f"/{source}", data=body, headers=headers)
        self.report.ingress_statuses[resp.status_code] += 1
        if resp.status_code == 400:
            lower = {k.lower(): v for k, v in headers.items()}
            delivery = lower.get(scheme.id_header) if scheme.id_header else None
            try:
                provider.event_id(delivery, lower, parse_payload(body, "form" if form else "json"),
                                  body)  # fmt: skip
            except InvalidPayloadId:
                self.report.ingress_refused["invalid_id"] += 1
                return None
            except MalformedBody:
                pass  # the fuzzer's own body is not what it meant to send: an invariant below
        if resp.status_code not in (200, 202):
            raise InvariantBroken(f"the ingress answered {resp.status_code} to a signed object")
        return str(resp.get_json()["event_id"])

    def _push(self, key: str) -> int:
        data = base64.b64encode(json.dumps({"event_key": key}).encode()).decode()
        envelope = {
            "message": {"data": data, "messageId": key[:16], "attributes": {"event_key": key}},
            "subscription": "projects/hookpress-local/subscriptions/events-deliver",
        }
        sink = _LogSink()
        with contextlib.redirect_stdout(sink):
            status = int(self.client.post("/", json=envelope).status_code)
        if self.site.app_password in "".join(sink.lines):
            raise InvariantBroken("the application password in a deliver log line")
        return status

    def check(self, case: DeliverCase) -> None:
        """Accept, deliver, and check every invariant; raise InvariantBroken."""
        report = self.report
        report.cases += 1
        report.kinds.update(case.kinds)
        report.sources[case.source] += 1
        was_probing_slot_free = not self.breaker.probing
        key = self._accept(case.source, case.body, case.event_type)
        if key is None:
            report.outcomes["refused_at_ingress"] += 1
            return
        status = self._push(key)
        report.deliver_statuses[status] += 1
        record = self.ingress.ingestor.records.get(key)
        state = record.data.get("status") if record else "no record"
        report.outcomes[str(state)] += 1
        detail = ""
        if record is not None:
            downstream = record.data.get("downstream_body") or ""
            detail = f" last_error={record.data.get('last_error')!r} wp={downstream[:300]!r}"
        if status >= 500:
            raise InvariantBroken(f"deliver answered {status}: {case.describe()}{detail}")
        if status != 204:
            raise InvariantBroken(f"deliver answered {status}, not 204: {case.describe()}")
        if state not in {"delivered", "failed"}:
            raise InvariantBroken(f"left {state!r}, not final: {case.describe()}{detail}")
        if state == "failed" and record is not None:
            reason = str(record.data.get("last_error") or "")
            if not reason.startswith(("unusable_payload:", "wordpress_rejected")):
                raise InvariantBroken(f"failed for {reason!r}: {case.describe()}{detail}")
            report.failed_reasons[_failure_label(reason, record.data)] += 1
        if self.breaker.probing or (was_probing_slot_free and self.breaker.state == "open"):
            raise InvariantBroken(f"the breaker's probe slot is held: {case.describe()}")

    def force_half_open(self) -> None:
        """Open the breaker as three WordPress failures would, then let it cool down."""
        for _ in range(self.breaker.threshold):
            self.breaker.failure()
        self.clock.t += self.breaker.cooldown_s
        if self.breaker.state != "half-open":
            raise InvariantBroken(f"the breaker did not open ({self.breaker.state})")
        self.report.half_open_batches += 1

    def sentinel(self) -> None:
        """A normal event after hostile ones: delivered, and exactly one post in WordPress."""
        import httpx

        external_id = f"sentinel-{self.ingress.tag}-{_nonce()}"
        body = json.dumps(
            {"id": external_id, "status": "completed", "summary": "after the storm"}
        ).encode()
        key = self._accept("hmac-timestamp", body, None)
        if key is None:
            raise InvariantBroken("the ingress refused a normal event")
        status = self._push(key)
        record = self.ingress.ingestor.records.get(key)
        if status != 204 or record is None or record.data.get("status") != "delivered":
            raise InvariantBroken(
                f"a normal event after a batch was not delivered ({status}, "
                f"{record and record.data.get('status')})"
            )
        if self.breaker.state != "closed":
            raise InvariantBroken(f"the breaker is {self.breaker.state} after a normal event")
        site = self.site
        with httpx.Client(auth=(site.admin_user, site.admin_app_password), timeout=60) as admin:
            posts = admin.get(
                f"{site.rest_base}/wp/v2/ai-events",
                params={"external_id": external_id, "status": "any"},
            ).json()
        if len(posts) != 1 or posts[0]["meta"].get("status") != "completed":
            raise InvariantBroken(f"WordPress holds {len(posts)} posts for the normal event")
        self.report.sentinels_delivered += 1

    def run_batch(self, size: int, batch_seed: int) -> None:
        """Half-open breaker, ``size`` hypothesis cases, then the normal event."""
        self.force_half_open()
        hypothesis_run(DeliverStrategies().cases(), self.check, size, batch_seed)
        self.sentinel()
        self.report.batches += 1


def _failure_label(reason: str, record: Mapping[str, Any]) -> str:
    """``unusable_payload:<why>``, or WordPress's status and error code (never the payload)."""
    if not reason.startswith("wordpress_rejected"):
        return reason
    try:
        answer = json.loads(record.get("downstream_body") or "")
        code = str(answer.get("code", "?"))
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        params = data.get("params")
        what = ",".join(sorted(params)) if isinstance(params, dict) else data.get("reason")
    except (ValueError, AttributeError):
        code, what = "?", None
    label = f"wordpress_rejected:{record.get('downstream_status')}:{code}"
    return f"{label}:{what}" if what else label


class _ManualClock:
    """The breaker's clock, moved by the fuzzer (cool-downs without waiting)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_deliver(
    fuzzer: DeliverFuzzer,
    cases: int,
    batch: int,
    base_seed: int,
    progress: Callable[[str], None] | None = None,
) -> DeliverReport:
    """Run ``cases`` deliver cases in batches (each with its half-open start and sentinel)."""
    started = time.monotonic()
    done = index = 0
    while done < cases:
        size = min(batch, cases - done)
        before = fuzzer.report.cases
        fuzzer.run_batch(size, base_seed + index)
        done += fuzzer.report.cases - before
        index += 1
        if progress:
            progress(f"deliver: {done:,} cases, {time.monotonic() - started:.0f} s")
    fuzzer.report.seconds = time.monotonic() - started
    return fuzzer.report


@contextlib.contextmanager
def emulators_env(workdir: Path) -> Iterator[str]:
    """Start the emulators, point this process at them; yield the project."""
    import os

    from hookpress.local.emulators import Emulators

    emulators = Emulators(workdir / "emulators").start()
    saved = {k: os.environ.get(k) for k in emulators.env}
    os.environ.update(emulators.env)
    try:
        yield emulators.project
    finally:
        emulators.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def markdown(report: FuzzReport, command: str) -> str:
    """The results table."""
    data = report.as_dict()
    samples = data["rss_mib_after_each_batch"]
    rss_list = ", ".join(str(x) for x in samples[:12]) + (" …" if len(samples) > 12 else "")
    lines = [
        "# Fuzzing the ingress and delivery",
        "",
        f"Command: `{command}`",
        "",
        "## Ingress: hostile requests at the public edge",
        "",
        "| figure | value |",
        "|---|---|",
        f"| cases | {data['cases']:,} in {data['batches']} batches |",
        f"| wall time | {data['seconds']} s ({data['cases_per_second']} cases/s) |",
        f"| 5xx | {sum(v for k, v in report.statuses.items() if k >= 500)} |",
        f"| accepted (202 + 200) | {data['accepted']:,} ({data['new_events']:,} new events) |",
        "| accepted without a valid signature | 0 (checked per case by an independent oracle) |",
        f"| RSS after each batch (MiB) | {rss_list} |",
        f"| RSS growth (median of the last quarter of batches minus the first) "
        f"| {data['rss_growth_mib']} MiB (max {max(samples, default=0)} MiB) |",
        "",
        "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in data["statuses"].items()),
        "",
        "Case kinds: " + ", ".join(f"{k}: {v:,}" for k, v in data["kinds"].items()),
        "",
        "Backend audit: every object, record and message belongs to an accepted, "
        "genuinely signed request.",
        "",
        "| check | count |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in data["audit"].items()),
        "",
    ]
    return "\n".join(lines)


def deliver_markdown(report: DeliverReport, failure: str | None) -> str:
    """The deliver half's results."""
    data = report.as_dict()
    reasons = ", ".join(f"{k}: {v:,}" for k, v in data["failed_reasons"].items()) or "none"
    return "\n".join(
        [
            "## Deliver: hostile payloads into a real WordPress",
            "",
            "| figure | value |",
            "|---|---|",
            f"| cases | {data['cases']:,} in {data['batches']} batches |",
            f"| wall time | {data['seconds']} s ({data['cases_per_second']} cases/s) |",
            f"| deliver 5xx | {data['deliver_5xx']} |",
            f"| events left in a non-final state | {data['non_final']} |",
            f"| outcomes | {', '.join(f'{k}: {v:,}' for k, v in data['outcomes'].items())} |",
            f"| refused at the ingress (unusable provider id) "
            f"| {sum(data['ingress_refused'].values()):,} |",
            f"| batches begun with the breaker half-open | {data['half_open_batches']} |",
            f"| normal events delivered after a batch | {data['sentinels_delivered']} |",
            f"| invariants | {'held' if failure is None else 'BROKEN: ' + failure} |",
            "",
            f"Failure reasons: {reasons}",
            "",
            "Hostile kinds (cases containing each): "
            + ", ".join(f"{k}: {v:,}" for k, v in data["kinds"].items()),
            "",
            "Cases by source (one per provider): "
            + ", ".join(f"{k}: {v:,}" for k, v in data["sources"].items()),
            "",
        ]
    )


def _run_deliver_half(
    project: str, workdir: Path, cases: int, batch: int, base_seed: int, say: Callable[[str], None]
) -> tuple[DeliverReport, str | None]:
    from hookpress.local.wordpress import WordPressServer

    with WordPressServer(workdir / "wordpress") as server:
        fuzzer = DeliverFuzzer(project, workdir, server.site)
        try:
            run_deliver(fuzzer, cases, batch, base_seed, say)
        except InvariantBroken as exc:
            return fuzzer.report, str(exc)
        finally:
            fuzzer.close()
    return fuzzer.report, None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.fuzz [--cases N] [--batch N] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--deliver-cases", type=int, default=2_000, help="0: ingress only")
    parser.add_argument("--deliver-batch", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    flags = [f"--cases {args.cases}"] if args.cases != 100_000 else []
    if args.deliver_cases != 2_000:
        flags.append(f"--deliver-cases {args.deliver_cases}")
    command = "nox -s fuzz" + (" -- " + " ".join(flags) if flags else "")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="hookpress-fuzz-") as tmp,
        emulators_env(Path(tmp)) as project,
    ):
        fuzzer = IngressFuzzer(project, Path(tmp))
        failure: str | None = None
        try:
            run(fuzzer, args.cases, args.batch, args.seed, say)
        except InvariantBroken as exc:
            failure = str(exc)
        finally:
            fuzzer.close()
        deliver_report, deliver_failure = DeliverReport(), None
        if args.deliver_cases > 0:
            deliver_report, deliver_failure = _run_deliver_half(
                project, Path(tmp), args.deliver_cases, args.deliver_batch, args.seed, say
            )
    report = fuzzer.report
    data = {
        "command": command,
        "machine": machine(),
        "invariants_held": failure is None,
        "failure": failure,
        "max_rss_growth_mib": args.max_rss_growth_mib,
        **report.as_dict(),
        "deliver": {
            "invariants_held": deliver_failure is None,
            "failure": deliver_failure,
            **deliver_report.as_dict(),
        },
    }
    bounded = report.rss_growth_mib <= args.max_rss_growth_mib
    data["rss_bounded"] = bounded
    text = markdown(report, command) + "\n" + deliver_markdown(deliver_report, deliver_failure)
    write_json(args.out / "fuzz.json", data)
    write_markdown(args.out / "fuzz.md", text)
    print(text)
    if failure or deliver_failure:
        say(f"INVARIANT BROKEN: {failure or deliver_failure}")
        return 1
    if not bounded:
        say(f"RSS grew {report.rss_growth_mib:.1f} MiB (limit {args.max_rss_growth_mib})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
