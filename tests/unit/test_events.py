"""The event key and the record: the identity every backend shares."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from hookpress.events import (
    InvalidPayloadId,
    Status,
    event_key,
    new_record,
    provider_event_id,
    raw_object_name,
)


def test_event_key_is_sha256_of_source_and_provider_id():
    assert event_key("stripe", "evt_1") == hashlib.sha256(b"stripe:evt_1").hexdigest()
    assert event_key("stripe", "evt_1") != event_key("github", "evt_1")


def test_provider_id_prefers_the_delivery_header_then_the_payload_then_the_body():
    body = b'{"id": "evt_9"}'
    assert provider_event_id("msg_1", {"id": "evt_9"}, body) == "msg_1"
    assert provider_event_id(None, {"id": "evt_9"}, body) == "evt_9"
    assert provider_event_id(None, {"id": 12345}, body) == "12345"
    assert provider_event_id(None, {"event_id": "Ev1"}, body, "event_id") == "Ev1"
    digest = hashlib.sha256(b"{}").hexdigest()
    assert provider_event_id(None, {}, b"{}") == f"sha256:{digest}"
    assert provider_event_id(None, {"id": True}, b"{}") == f"sha256:{digest}"
    assert provider_event_id(None, {"id": None}, b"{}") == f"sha256:{digest}"


@pytest.mark.parametrize("bad", ["", "a\nb", "a\rb", "x" * 257])
def test_an_unusable_payload_id_is_refused_not_replaced(bad: str):
    with pytest.raises(InvalidPayloadId):
        provider_event_id(None, {"id": bad}, b"{}")


def test_raw_object_name_is_dated_in_utc():
    when = datetime(2026, 1, 2, 23, 30, tzinfo=UTC)
    assert raw_object_name("stripe", "k", when) == "raw/stripe/2026/01/02/k.json"


def test_new_record_has_every_field_of_the_contract():
    when = datetime(2026, 1, 2, tzinfo=UTC)
    record = new_record(
        source="s", scheme="stripe", provider_id="p", received_at=when, raw_uri="gs://b/o",
        body_sha256="h", ttl_days=30,
    )  # fmt: skip
    assert set(record) == {
        "source", "scheme", "provider_event_id", "event_type", "received_at", "raw_uri",
        "body_sha256", "status", "attempts", "last_error", "downstream_status", "wp_post_id",
        "delivered_at", "updated_at", "expire_at", "provider", "lane", "body_format",
    }  # fmt: skip
    assert record["status"] == Status.RECEIVED
    assert record["expire_at"] == when + timedelta(days=30)
