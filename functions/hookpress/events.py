"""The event: its key, its Firestore record and its status machine.

``event_key`` = sha256 hex of ``{source}:{provider_event_id}``. It names the
Firestore document, the GCS object and the WordPress ``Idempotency-Key``.
The provider id is the scheme's delivery-id header, else the payload's id
field, else the sha256 of the body.

Where the id can come from a header the signature does not cover (GitHub's
and Shopify's delivery ids: :attr:`hookpress.providers.Provider.id_unsigned`),
whoever holds one captured request can send its signed body again under any
id. So the *body* decides: :func:`first_provider_id` keeps a
create-only marker per body (``{events}-bodies/{sha256 of source:body}``)
holding the first provider id it arrived with, and every later arrival of
the same body - under another id, or none - is that same event.

Status machine (DESIGN.md)::

    received ─publish─▶ published ─2xx─▶ delivered
                           ├─permanent 4xx─▶ failed
                           ├─paused────────▶ held
                           └─attempts exhausted (DLQ)─▶ dead
    failed | held | dead ─replay─▶ published
    received (publish lost) ─reconciler─▶ published
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError
from hookpress.signatures import valid_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hookpress.backends.firestore import EventRecords, Snapshot

__all__ = [
    "RAW_NAME",
    "InvalidPayloadId",
    "Status",
    "bodies_collection",
    "body_marker",
    "body_marker_key",
    "event_key",
    "first_provider_id",
    "labelled_raw_name",
    "marked_provider_id",
    "message_attributes",
    "new_record",
    "provider_event_id",
    "raw_object_name",
]


class Status(StrEnum):
    """Where an event is in its life."""

    RECEIVED = "received"
    PUBLISHED = "published"
    DELIVERED = "delivered"
    FAILED = "failed"
    HELD = "held"
    DEAD = "dead"


class InvalidPayloadId(ValueError):
    """The payload's id field is present but not a usable id (too long, control characters)."""


def provider_event_id(
    delivery_id: str | None, payload: dict[str, Any], body: bytes, id_field: str = "id"
) -> str:
    """The provider's id for this event: delivery header, else payload id, else body hash."""
    if delivery_id:
        return delivery_id
    value = payload.get(id_field)
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        if not valid_id(value):
            raise InvalidPayloadId(id_field)
        return value
    return "sha256:" + hashlib.sha256(body).hexdigest()


def event_key(source: str, provider_id: str) -> str:
    """sha256 hex of ``{source}:{provider_event_id}``."""
    return hashlib.sha256(f"{source}:{provider_id}".encode()).hexdigest()


def bodies_collection(events_collection: str) -> str:
    """The collection of body markers, beside the events (``events`` → ``events-bodies``)."""
    return f"{events_collection}-bodies"


def body_marker_key(source: str, body: bytes) -> str:
    """sha256 hex of ``{source}:{body}``: the document id of the body's marker."""
    digest = hashlib.sha256(f"{source}:".encode())
    digest.update(body)
    return digest.hexdigest()


def first_provider_id(
    records: EventRecords,
    *,
    id_unsigned: bool,
    source: str,
    body: bytes,
    provider_id: str,
    received_at: datetime,
    ttl_days: int,
) -> str:
    """The provider id this body is stored under: ``provider_id``, unless the body came first.

    Only when ``id_unsigned`` (the provider's id can come from a header the
    signature does not cover); otherwise the id (signed, or read from the
    signed body) already is the identity.
    The marker is create-only: among concurrent copies one wins, and every
    copy then takes the path of the winner's id - record create-if-absent,
    publish claim, 202 or ``200 duplicate`` - so none is lost and none is a
    second event. A marker whose record was never created is completed by the
    next copy, whatever its id. The ingress first tries the marker and the
    record in one commit and comes here only when that is refused; replay from
    GCS comes here for every rebuilt object. Raises BackendError (answered 503).
    """
    if not id_unsigned:
        return provider_id
    marker, fields = body_marker(source, body, provider_id, received_at, ttl_days)
    collection = bodies_collection(records.collection_name)
    created = records.create(marker, fields, collection=collection)
    if created is not None:
        return provider_id
    first = records.get(marker, collection=collection)
    if first is None:
        raise BackendError("firestore", "marker expired meanwhile")  # the retry creates it
    return _marked_id(first) or provider_id


def marked_provider_id(records: EventRecords, source: str, body: bytes) -> str | None:
    """The first provider id the body's marker names, or None (no marker: read only)."""
    found = records.get(
        body_marker_key(source, body), collection=bodies_collection(records.collection_name)
    )
    return _marked_id(found) if found is not None else None


def _marked_id(marker: Snapshot) -> str | None:
    known = marker.data.get("provider_event_id")
    return known if isinstance(known, str) and valid_id(known) else None


def body_marker(
    source: str, body: bytes, provider_id: str, received_at: datetime, ttl_days: int
) -> tuple[str, dict[str, Any]]:
    """The body's marker as :func:`first_provider_id` creates it: its document id (in
    :func:`bodies_collection`) and fields. The ingress also creates it in one atomic commit
    with the record it names (see ``hookpress.ingress._pipeline``)."""
    return body_marker_key(source, body), {
        "source": source,
        "provider_event_id": provider_id,
        "created_at": received_at,
        # Not shorter than the record's: the record's TTL is the replay horizon.
        "expire_at": received_at + timedelta(days=ttl_days),
    }


RAW_NAME = re.compile(
    r"^raw/(?P<source>[a-z0-9][a-z0-9_-]{0,62})/(?P<yyyy>\d{4})/(?P<mm>\d{2})/(?P<dd>\d{2})/"
    r"(?P<key>[0-9a-f]{64})\.json$"
)


def raw_object_name(source: str, key: str, received_at: datetime) -> str:
    """``raw/{source}/{yyyy}/{mm}/{dd}/{event_key}.json``."""
    day = received_at.astimezone(UTC)
    return f"raw/{source}/{day.year:04d}/{day.month:02d}/{day.day:02d}/{key}.json"


def labelled_raw_name(key: str, attributes: Mapping[str, str]) -> str | None:
    """The raw object's name as an event's message labels it (``source``, ``received_at``;
    see :func:`message_attributes`), or None if the labels do not name one.

    A hint only, for reading the object while the record is read: the record's
    ``raw_uri`` decides which object is delivered.
    """
    try:
        received = datetime.fromisoformat(attributes["received_at"])
    except (KeyError, ValueError):
        return None
    if received.tzinfo is None:
        return None
    name = raw_object_name(attributes.get("source", ""), key, received)
    return name if RAW_NAME.match(name) else None


def new_record(
    *,
    source: str,
    scheme: str,
    provider_id: str,
    received_at: datetime,
    raw_uri: str,
    body_sha256: str,
    ttl_days: int,
    event_type: str | None = None,
    provider: str | None = None,
    lane: str = "normal",
    body_format: str = "json",
) -> dict[str, Any]:
    """A fresh Firestore record in status ``received``.

    ``event_type`` is kept for schemes that send the type in a header rather
    than the body (GitHub's X-GitHub-Event, Shopify's X-Shopify-Topic), since
    only the body is stored; for the others it is read from the payload, so
    message attributes and the warehouse can carry it. ``provider`` names the
    transform; ``lane`` the push subscription that delivers it; ``body_format``
    how the stored bytes are read (``json`` or ``form``).
    """
    return {
        "source": source,
        "scheme": scheme,
        "provider": provider or scheme,
        "lane": lane,
        "body_format": body_format,
        "provider_event_id": provider_id,
        "event_type": event_type,
        "received_at": received_at,
        "raw_uri": raw_uri,
        "body_sha256": body_sha256,
        "status": Status.RECEIVED.value,
        "attempts": 0,
        "last_error": None,
        "downstream_status": None,
        "wp_post_id": None,
        "delivered_at": None,
        "updated_at": received_at,
        "expire_at": received_at + timedelta(days=ttl_days),
    }


def message_attributes(record: dict[str, Any]) -> dict[str, str]:
    """The Pub/Sub attributes of an event's message (besides ``event_key``).

    Lanes are push subscriptions filtered on ``lane``; the warehouse's BigQuery
    subscription writes them all. Labels only: deliver reads the record, and reads the
    object they name meanwhile (:func:`labelled_raw_name`) as a hint the record confirms.
    """
    received = record.get("received_at")
    attributes = {
        "source": str(record.get("source") or ""),
        "provider": str(record.get("provider") or record.get("scheme") or ""),
        "type": str(record.get("event_type") or ""),
        "received_at": received.astimezone(UTC).isoformat()
        if isinstance(received, datetime)
        else "",
        "lane": str(record.get("lane") or "normal"),
    }
    return {k: v for k, v in attributes.items() if v}
