"""The deliver function's pure parts: classification, breaker, envelope, transforms."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hookpress.deliver import (
    AuthenticationFailed,
    Breaker,
    PermanentDeliveryError,
    RetryableDeliveryError,
    classify,
)
from hookpress.deliver._envelope import MalformedEnvelope, parse_envelope
from hookpress.deliver.transforms import (
    Event,
    UnusablePayload,
    build_body,
    build_record,
    encode_record,
    register,
)

KEY = "a" * 64

# -- classification: DESIGN.md "Delivery to WordPress" -------------------------------


@pytest.mark.parametrize("status", [200, 201])
def test_2xx_is_delivered(status: int):
    assert classify(status, '{"id": 42}').post_id == 42
    assert classify(status, "not json").post_id is None


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retryable(status: int):
    with pytest.raises(RetryableDeliveryError):
        classify(status, "")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_permanent_failures(status: int):
    with pytest.raises(PermanentDeliveryError) as info:
        classify(status, "")
    assert info.value.reason == "redirect_not_followed"


@pytest.mark.parametrize("status", [400, 403, 404, 405, 410, 413, 415, 422])
def test_other_4xx_are_permanent(status: int):
    with pytest.raises(PermanentDeliveryError) as info:
        classify(status, "")
    assert not isinstance(info.value, RetryableDeliveryError)


def test_401_is_retried_not_failed():
    """A rotation in flight, or a password fixed later: never lose the event to a 401."""
    with pytest.raises(AuthenticationFailed) as info:
        classify(401, "")
    assert isinstance(info.value, RetryableDeliveryError)


# -- the breaker -----------------------------------------------------------------------


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_n_failures_then_lets_one_probe():
    clock = Clock()
    breaker = Breaker(3, 30, clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.t = 29.9
    assert not breaker.allow()
    clock.t = 30
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.failure()  # the probe failed: open again for a full cool-down
    assert not breaker.allow()
    clock.t = 60
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.allow()


def test_breaker_success_resets_the_count():
    breaker = Breaker(2, 30, Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.allow()


def test_abandoned_probe_frees_the_slot():
    clock = Clock()
    breaker = Breaker(1, 10, clock)
    breaker.failure()
    clock.t = 10
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()


# -- the push envelope --------------------------------------------------------------


def envelope(data: object = None, **extra: object) -> bytes:
    message: dict[str, object] = {"messageId": "m1", "attributes": {"source": "stripe"}}
    if data is not None:
        message["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    return json.dumps(
        {"message": message, "subscription": "projects/p/subscriptions/s", **extra}
    ).encode()


def test_envelope_parses():
    msg = parse_envelope(envelope({"event_key": KEY}, deliveryAttempt=3))
    assert msg.event_key == KEY
    assert msg.delivery_attempt == 3
    assert msg.message_id == "m1"
    assert msg.attributes == {"source": "stripe"}


def test_envelope_without_delivery_attempt_like_the_emulator():
    assert parse_envelope(envelope({"event_key": KEY})).delivery_attempt is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"message": "x"}',
        envelope(),
        envelope({"event_key": "not-a-key"}),
        envelope({"event_key": KEY.upper()}),
        json.dumps({"message": {"data": "!!!"}}).encode(),
        json.dumps({"message": {"attributes": ["x"]}}).encode(),
    ],
)
def test_malformed_envelopes(body: bytes):
    with pytest.raises(MalformedEnvelope):
        parse_envelope(body)


# -- transforms ---------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(payload: dict, scheme: str = "hmac-timestamp", **kw) -> Event:
    base = {
        "source": "src",
        "scheme": scheme,
        "provider_event_id": "evt_1",
        "event_type": None,
        "payload": payload,
        "received_at": RECEIVED,
    }
    base.update(kw)
    return Event(**base)


def test_generic_mapping_and_limits():
    record = build_record(
        event(
            {
                "status": "completed",
                "summary": "x" * 5000,
                "metadata": {"model": "m", "url": "http://169.254.169.254/"},
                "created_at": "2026-10-01T10:00:00Z",
            }
        )
    )
    assert record == {
        "source": "src",
        "external_id": "evt_1",
        "status": "completed",
        "summary": "x" * 2000,
        "metadata": {"model": "m", "url": "http://169.254.169.254/"},
        "occurred_at": "2026-10-01T10:00:00+00:00",
    }


def test_generic_mapping_falls_back_to_receipt_time_and_type():
    record = build_record(event({"type": "thing.happened"}))
    assert record["status"] == "thing.happened"
    assert record["occurred_at"] == "2026-11-01T12:00:00+00:00"
    assert record["metadata"] == {}


def test_stripe_mapping():
    payload = {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "created": 1_700_000_000,
        "livemode": False,
        "data": {
            "object": {"object": "payment_intent", "id": "pi_1", "amount": 100, "currency": "eur"}
        },
    }
    record = build_record(event(payload, "stripe"))
    assert record["status"] == "payment_intent.succeeded"
    assert record["summary"] == "payment_intent.succeeded: payment_intent pi_1"
    assert record["metadata"]["amount"] == 100
    assert record["occurred_at"] == "2023-11-14T22:13:20+00:00"


def test_github_mapping_uses_the_header_type():
    payload = {"action": "opened", "repository": {"full_name": "o/r"}, "sender": {"login": "u"}}
    record = build_record(event(payload, "github", event_type="pull_request"))
    assert record["status"] == "pull_request.opened"
    assert record["summary"] == "pull_request.opened on o/r by u"


def test_openai_style_standard_webhooks_mapping():
    payload = {
        "id": "evt_1",
        "type": "response.completed",
        "created_at": 1_750_000_000,
        "data": {"id": "resp_1"},
    }
    record = build_record(event(payload, "standard-webhooks"))
    assert record["status"] == "response.completed"
    assert record["summary"] == "response.completed: resp_1"


def test_the_body_posted_is_the_record_encoded_once_compact_and_utf8():
    payload = {"status": "ok", "summary": "été ✓", "metadata": {"n": 1, "nested": {"a": [1, 2]}}}
    record, content = build_body(event(payload))
    assert record == build_record(event(payload))
    assert content == encode_record(record)
    assert json.loads(content) == record
    assert "été ✓".encode() in content  # UTF-8, not \u escapes
    assert b", " not in content  # compact separators
    assert b": " not in content


def test_oversized_metadata_is_replaced_not_sent():
    record = build_record(event({"metadata": {"blob": "x" * 100_000}}))
    assert record["metadata"] == {"truncated": True}


def test_a_per_source_hook_wins():
    @register("custom-src")
    def custom(e: Event) -> dict:
        return {"status": "custom", "summary": e.payload["text"], "metadata": {"n": 1}}

    record = build_record(event({"text": "hello"}, source="custom-src"))
    assert (record["status"], record["summary"], record["metadata"]) == (
        "custom",
        "hello",
        {"n": 1},
    )


# -- poison payloads: a reason, never an exception -----------------------------------------

OUT_OF_RANGE = [
    1e20,
    10**30,
    -(10**12),
    "1e400",
    "9" * 30,
    "-99999999999999",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]
NOT_A_TIME = [True, {}, [], "", "soon", "nan", "Infinity", "2026-13-45", None]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=repr)
@pytest.mark.parametrize("scheme", ["hmac-timestamp", "stripe", "standard-webhooks", "slack"])
def test_a_time_out_of_range_is_an_unusable_payload(scheme: str, value: object):
    field = {"stripe": "created", "slack": "event_time"}.get(scheme, "created_at")
    with pytest.raises(UnusablePayload) as info:
        build_record(event({field: value, "type": "x"}, scheme))
    assert info.value.reason == "occurred_at_out_of_range"


@pytest.mark.parametrize("value", NOT_A_TIME, ids=repr)
def test_a_value_that_is_no_time_at_all_is_ignored(value: object):
    record = build_record(event({"occurred_at": value, "created_at": 1_700_000_000}))
    assert record["occurred_at"] == "2023-11-14T22:13:20+00:00"
    assert build_record(event({"created_at": value}))["occurred_at"] == "2026-11-01T12:00:00+00:00"


def test_the_edges_of_the_range_are_delivered():
    early = build_record(event({"created_at": "0001-01-01T00:00:00Z"}))
    late = build_record(event({"created_at": "9999-12-31T23:59:59+00:00"}))
    assert early["occurred_at"] == "0001-01-01T00:00:00+00:00"
    assert late["occurred_at"] == "9999-12-31T23:59:59+00:00"
    assert build_record(event({"created_at": "1700000000.5"}))["occurred_at"].startswith("2023")


@pytest.mark.parametrize(
    ("returns", "reason"),
    [
        (ZeroDivisionError, "transform_failed:ZeroDivisionError"),
        (RecursionError, "transform_failed:RecursionError"),
        (KeyError, "transform_failed:KeyError"),
        (["not", "a", "dict"], "transform_returned_list"),
        ({"summary": "\ud800"}, "transform_failed:UnicodeEncodeError"),
        ({"metadata": {"self": None}}, None),
    ],
    ids=repr,
)
def test_a_hook_that_raises_or_returns_nonsense_is_a_reason(returns: object, reason: str | None):
    @register("hooked")
    def hook(e: Event) -> object:
        if isinstance(returns, type):
            raise returns("boom")
        return returns

    try:
        if reason is None:
            assert build_record(event({}, source="hooked"))["metadata"] == {}
        else:
            with pytest.raises(UnusablePayload) as info:
                build_record(event({}, source="hooked"))
            assert info.value.reason == reason
    finally:
        from hookpress.deliver import transforms

        transforms._BY_SOURCE.pop("hooked", None)


def test_a_hooks_naive_time_is_utc_and_a_circular_metadata_is_a_reason():
    from hookpress.deliver import transforms

    @register("hooked")
    def naive(e: Event) -> dict:
        return {"occurred_at": datetime(2026, 1, 2, 3, 4, 5)}  # naive: the point

    try:
        assert build_record(event({}, source="hooked"))["occurred_at"] == (
            "2026-01-02T03:04:05+00:00"
        )
        loop: dict = {}
        loop["loop"] = loop

        @register("hooked")
        def circular(e: Event) -> dict:
            return {"metadata": loop}

        with pytest.raises(UnusablePayload) as info:
            build_record(event({}, source="hooked"))
        assert info.value.reason == "transform_failed:ValueError"
    finally:
        transforms._BY_SOURCE.pop("hooked", None)


def test_integers_no_json_reader_holds_exactly_become_strings():
    big, edge = 2**64 + 1, 2**53 - 1
    record = build_record(
        event({"metadata": {"n": big, "edge": edge, "neg": -big, "deep": [{"x": big}], "b": True}})
    )
    assert record["metadata"] == {
        "n": str(big),
        "edge": edge,
        "neg": str(-big),
        "deep": [{"x": str(big)}],
        "b": True,
    }
    stripe = build_record(event({"data": {"object": {"amount": big}}}, "stripe"))
    assert stripe["metadata"]["amount"] == str(big)


def test_control_characters_never_reach_the_status():
    assert build_record(event({"type": "a\nb\x00c"}))["status"] == "a b c"
    assert build_record(event({"type": "\n\t"}))["status"] == "received"


def _json_values() -> Any:
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**80), 2**80)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | st.sampled_from(["1e400", "0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z", "9" * 20])
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )


KEYS = ["id", "type", "status", "summary", "metadata", "data", "object", "created", "created_at",
        "occurred_at", "event", "event_time", "action", "repository", "sender", "name",
        "timestamp", "description", "message", "updated_at", "team_id", "livemode"]  # fmt: skip


@pytest.mark.parametrize("scheme", ["hmac-timestamp", "stripe", "standard-webhooks", "github",
                                    "slack", "shopify"])  # fmt: skip
def test_every_default_transform_gives_a_record_or_a_reason(scheme: str):
    """Any JSON object under the keys the transforms read: never an exception, never junk."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, database=None)
    @given(payload=st.dictionaries(st.sampled_from(KEYS), _json_values(), max_size=8))
    def check(payload: dict) -> None:
        try:
            record = build_record(event(payload, scheme, event_type="push"))
        except UnusablePayload as exc:
            reasons.add(exc.reason)
            return
        assert set(record) == {"source", "external_id", "status", "summary", "metadata",
                               "occurred_at"}  # fmt: skip
        assert 1 <= len(record["status"]) <= 64
        assert not any(ord(c) < 32 or ord(c) == 127 for c in record["status"])
        assert len(record["summary"]) <= 2000
        assert isinstance(record["metadata"], dict)
        datetime.fromisoformat(record["occurred_at"])
        json.dumps(record, ensure_ascii=False).encode("utf-8")

    reasons: set[str] = set()
    check()
    assert reasons <= {"occurred_at_out_of_range"}


@pytest.mark.parametrize("header", ["<x>", "<script>x</script>", " ", "a b", "push\n", "x" * 65])
@pytest.mark.parametrize(("scheme", "default"), [("github", "github"), ("shopify", "shopify")])
def test_an_unsigned_type_header_that_is_no_label_decides_nothing(scheme, default, header):
    """WordPress strips markup from the status: "<x>" would leave it empty and refused."""
    record = build_record(event({}, scheme, event_type=header))
    assert record["status"] == default


def test_the_labels_providers_send_are_kept():
    assert build_record(event({}, "github", event_type="pull_request"))["status"] == "pull_request"
    assert build_record(event({}, "shopify", event_type="orders/create"))["status"] == (
        "orders/create"
    )
    assert build_record(event({}, "hmac-timestamp", event_type="x.y"))["status"] == "x.y"
