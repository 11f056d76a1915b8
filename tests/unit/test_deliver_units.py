"""The deliver function's pure parts: classification, breaker, envelope, transforms."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from hookpress.deliver import (
    AuthenticationFailed,
    Breaker,
    PermanentDeliveryError,
    RetryableDeliveryError,
    classify,
)
from hookpress.deliver._envelope import MalformedEnvelope, parse_envelope
from hookpress.deliver.transforms import Event, build_record, register

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
