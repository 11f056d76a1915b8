"""The event key and the record: the identity every backend shares."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hookpress.events import (
    InvalidPayloadId,
    Status,
    bodies_collection,
    body_marker_key,
    event_key,
    labelled_raw_name,
    message_attributes,
    new_record,
    provider_event_id,
    raw_object_name,
)
from hookpress.providers import PROVIDERS
from hookpress.signatures import SCHEMES, SignatureError


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


def test_a_messages_labels_name_its_raw_object():
    """Deliver reads the object while it reads the record: the name the labels give is the
    one the ingress stored it under, or none at all."""
    when = datetime(2026, 1, 2, 23, 30, 5, 123456, tzinfo=UTC)
    key = event_key("stripe", "evt_1")
    record = new_record(
        source="stripe", scheme="stripe", provider_id="evt_1", received_at=when,
        raw_uri="gs://b/o", body_sha256="h", ttl_days=30,
    )  # fmt: skip
    labels = message_attributes(record)
    assert labelled_raw_name(key, labels) == raw_object_name("stripe", key, when)
    # Another offset of the same instant names the same (UTC) day.
    shifted = {**labels, "received_at": when.astimezone(timezone(timedelta(hours=5))).isoformat()}
    assert labelled_raw_name(key, shifted) == raw_object_name("stripe", key, when)
    for unusable in (
        {},
        {"source": "stripe"},
        {**labels, "received_at": "yesterday"},
        {**labels, "received_at": "2026-01-02T23:30:05"},  # no offset: which day?
        {**labels, "source": ""},
        {**labels, "source": "../other"},
        {**labels, "source": "Stripe"},
    ):
        assert labelled_raw_name(key, unusable) is None, unusable
    assert labelled_raw_name("not-a-key", labels) is None


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


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_id_signed_tells_the_truth(name: str):
    """A scheme that claims its id is signed must refuse a changed id; one that does not, not.

    The claim decides whether a body marker guards the event key
    (``first_provider_id``), so it is checked against verification itself.
    """
    scheme = SCHEMES[name]
    if scheme.id_header is None:
        return  # the id comes from the signed body: nothing to forge
    body, now, url = b'{"id": "evt_1"}', 1_700_000_000, "https://hooks.example/x"
    key = scheme.new_secret()
    signed = scheme.sign(body, key.sign, now=now, delivery_id="a", url=url)
    headers = {k.lower(): v for k, v in signed.items()}
    scheme.verify(body, headers, [key.verify], now=now, url=url)  # the genuine one passes
    headers[scheme.id_header] = "b"
    try:
        scheme.verify(body, headers, [key.verify], now=now, url=url)
    except SignatureError:
        verified_with_another_id = False
    else:
        verified_with_another_id = True
    assert scheme.id_signed is not verified_with_another_id


def test_only_github_and_shopify_take_their_id_from_an_unsigned_header():
    assert {n for n, s in SCHEMES.items() if s.id_header and not s.id_signed} == {
        "github",
        "shopify",
    }
    assert {n for n, p in PROVIDERS.items() if p.id_unsigned} == {"github", "shopify"}


def test_the_body_marker_key_is_sha256_of_source_and_body():
    body = b'{"zen": "Design for failure."}'
    assert body_marker_key("github", body) == hashlib.sha256(b"github:" + body).hexdigest()
    assert body_marker_key("github", body) != body_marker_key("shopify", body)
    assert bodies_collection("events") == "events-bodies"
