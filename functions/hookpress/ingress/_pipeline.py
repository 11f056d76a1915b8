"""The ingress use case: verify, parse, store durably, dedupe, publish.

``Ingestor.ingest`` is everything between "these bytes arrived for this
source" and "this is what to answer". It never sees HTTP; the HTTP mapping
lives in ``_http.py``.

Durability order (DESIGN.md): the raw bytes go to GCS (create-only) while the
record is created in Firestore (create-only); only when both are stored is the
key published, and only once it is published is the answer 202. A record left
``received`` by a failed publish is published by the provider's retry (seen
here as a duplicate) or by the reconciler.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgspec

from hookpress.backends import BackendError
from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher
from hookpress.backends.secrets import CachedSecrets
from hookpress.events import (
    InvalidPayloadId,
    Status,
    bodies_collection,
    body_marker,
    event_key,
    first_provider_id,
    message_attributes,
    new_record,
    raw_object_name,
)
from hookpress.logs import Logger
from hookpress.payloads import MalformedBody, parse_payload
from hookpress.providers import PROVIDERS
from hookpress.publication import Publication
from hookpress.settings import IngressSettings, SourceConfig
from hookpress.signatures import SCHEMES, SignatureError, Verified

if TYPE_CHECKING:
    import threading

__all__ = ["Ingestor", "Outcome", "Result", "stored_forms"]

_PAYLOAD_MAX = 4 * 1024 * 1024


class Outcome(StrEnum):
    """What happened to a request; the HTTP layer maps each to one status code."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CHALLENGE = "challenge"
    MALFORMED = "malformed"
    UNAUTHORIZED = "unauthorized"
    UNKNOWN_SOURCE = "unknown_source"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    HEADERS_TOO_LARGE = "headers_too_large"  # the server's refusal (_server.py), never ingest's
    UNAVAILABLE = "unavailable"


# The values built on every request (this one, _Arrival, Verified, Prepared, wire.Answer)
# are frozen msgspec Structs, as is every value class a function loads to start (README,
# "Decisions and departures"): a Struct is made in C, with no code generated at import, and
# its __init__ takes 0.10 µs for eight fields where a slotted dataclass's took 0.25 and a
# frozen one's 3.4 times that (perf charged those inits 28 µs a request at c = 1, in caches
# the backends' answers have just cooled: bench/RESULTS.md, "The request path's small
# costs").
class Result(msgspec.Struct, frozen=True):
    """The outcome, and what the log and the answer need to know about it."""

    outcome: Outcome
    event_key: str | None = None
    reason: str | None = None
    republished: bool = False
    challenge: str | None = None


def stored_forms(
    source: SourceConfig,
    pid: str,
    key: str,
    body: bytes,
    received_at: datetime,
    uri: Callable[[str], str],
    *,
    ttl_days: int,
    event_type: str | None,
    body_format: str = "json",
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A new event as it is stored: the raw object's name, its record, and the object's
    metadata (what a rebuild from GCS alone needs and the body cannot tell: see replay).

    The benchmark's direct-calls floor builds the same three with this.
    """
    name = raw_object_name(source.name, key, received_at)
    record = new_record(
        source=source.name,
        scheme=source.scheme,
        provider_id=pid,
        received_at=received_at,
        raw_uri=uri(name),
        body_sha256=hashlib.sha256(body).hexdigest(),
        ttl_days=ttl_days,
        event_type=event_type,
        provider=source.provider,
        lane=source.lane,
        body_format=body_format,
    )
    metadata = {
        "provider_event_id": pid,
        "scheme": source.scheme,
        "provider": source.provider,
        "lane": source.lane,
        "body_format": body_format,
        "received_at": received_at.isoformat(),
    }
    if event_type:
        metadata["event_type"] = event_type
    return name, record, metadata


class _Arrival(msgspec.Struct, frozen=True):
    """One verified, parsed delivery, about to be stored as the event ``key``."""

    source: SourceConfig
    pid: str  # the provider's event id: the key's, or its first copy's
    key: str
    body: bytes
    now: float
    event_type: str | None
    body_format: str
    payload: dict[str, Any] | None  # the warehouse's copy in the message, if carried

    def under(self, pid: str) -> _Arrival:
        """The same delivery stored under another provider id (its body's first copy's)."""
        return msgspec.structs.replace(self, pid=pid, key=event_key(self.source.name, pid))


class _Contended(Exception):
    """The body's marker or the record existed: the atomic commit wrote nothing."""


class Ingestor:
    """One per function instance; safe to call from many threads."""

    def __init__(
        self,
        settings: IngressSettings,
        *,
        secrets: CachedSecrets,
        raw: RawStore,
        records: EventRecords,
        publisher: EventPublisher,
        log: Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.raw = raw
        self.records = records
        self.publisher = publisher
        self.log = log
        self.clock = clock
        # A claim outlives the request that took it by at most this long: the
        # publish and the status write each give up after the backend timeout.
        self._bodies = bodies_collection(records.collection_name)
        self.publication = Publication(
            records, publisher, lease_s=2 * settings.backend_timeout_s + 1, log=log
        )

    def warm(self) -> list[threading.Thread]:
        """Start, in threads, what an instance's first event would otherwise wait for one
        after another: Secret Manager's connection and the access token (its secret is
        read first), then connections to Cloud Storage, Firestore and Pub/Sub, each opened
        while the secret is read."""
        return self.secrets.warm() + self.raw.warm() + self.records.warm() + self.publisher.warm()

    # -- verification -------------------------------------------------------

    def _verify(
        self,
        source: SourceConfig,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
        query: str = "",
    ) -> Verified:
        scheme = SCHEMES[source.scheme]
        tolerance = source.tolerance_s or self.settings.timestamp_tolerance_s
        # Only URL-signing schemes (Twilio) read it: the public URL plus the request's query.
        url = f"{source.url}?{query}" if source.url and query else source.url
        secrets = self.secrets.get(source.secret)
        try:
            return scheme.verify(body, headers, secrets, now=now, tolerance=tolerance, url=url)
        except SignatureError as exc:
            if exc.reason not in {"no_match", "no_secret"}:
                raise
            # Maybe the secret was just rotated: re-read it (rate-limited) and try once more.
            fresh = self.secrets.refresh_after_failure(source.secret)
            if fresh is None:
                raise
            return scheme.verify(body, headers, fresh, now=now, tolerance=tolerance, url=url)

    # -- the use case ---------------------------------------------------------

    def ingest(
        self, source: SourceConfig, headers: Mapping[str, str], body: bytes, query: str = ""
    ) -> Result:
        """Handle one delivery of ``body`` for ``source`` (``query``: the URL's query string)."""
        now = self.clock()
        try:
            verified = self._verify(source, headers, body, now, query)
        except SignatureError as exc:
            return Result(Outcome.UNAUTHORIZED, reason=exc.reason)
        except BackendError as exc:
            return Result(Outcome.UNAVAILABLE, reason=exc.backend)

        try:
            payload = parse_payload(body, verified.body_format)
        except MalformedBody as exc:
            return Result(Outcome.MALFORMED, reason=exc.reason)

        if source.scheme == "slack" and payload.get("type") == "url_verification":
            # Slack's one-off handshake when the URL is registered: echo, store nothing.
            challenge = payload.get("challenge")
            if isinstance(challenge, str) and 0 < len(challenge) <= 256:
                return Result(Outcome.CHALLENGE, challenge=challenge)
            return Result(Outcome.MALFORMED, reason="bad_challenge")

        provider = PROVIDERS[source.provider]
        try:
            pid = provider.event_id(verified.delivery_id, headers, payload, body)
        except InvalidPayloadId:
            return Result(Outcome.MALFORMED, reason="invalid_id")
        key = event_key(source.name, pid)
        # A label only (an unusable one is dropped): never worth refusing a verified event for.
        event_type = provider.event_type(headers, payload)
        try:
            # The warehouse's copy, within Pub/Sub's 10 MB message limit.
            carried = (
                payload if self.settings.message_payload and len(body) <= _PAYLOAD_MAX else None
            )
            arrival = _Arrival(
                source, pid, key, body, now, event_type, verified.body_format, carried
            )  # fmt: skip
            if provider.id_unsigned:
                # An unsigned delivery id cannot make the same signed body a new event.
                return self._first_copy(arrival)
            return self._store_and_publish(arrival)
        except BackendError as exc:
            return Result(Outcome.UNAVAILABLE, event_key=key, reason=exc.backend)

    def _first_copy(self, arrival: _Arrival) -> Result:
        """Store a body whose provider id is unsigned under the id of its first copy.

        Optimistic: the body's marker (naming this copy's id) and the record are
        created in one atomic commit while the upload is on the wire, the same one
        round trip as any other event. Only if either already exists (a retry, or
        a copy of a body seen before) is nothing written, and this copy takes
        :func:`~hookpress.events.first_provider_id`'s path: read the first id, then
        store and answer under it. The object a copy uploaded under its own id's
        name stays: the ingress may create objects, never delete them
        (``roles/storage.objectCreator``, infra/access.py). It is bytes no record
        names; replay from GCS applies the same marker and reports it a copy
        (``hookpress.ops.replay``), and the bucket's lifecycle removes it in time.
        """
        received_at = datetime.fromtimestamp(arrival.now, UTC)
        ttl_days = self.settings.event_ttl_days
        name, body, pid = arrival.source.name, arrival.body, arrival.pid
        marker = body_marker(name, body, pid, received_at, ttl_days)
        try:
            return self._store_and_publish(arrival, marker=marker)
        except _Contended:
            pass
        first = first_provider_id(
            self.records,
            id_unsigned=True,
            source=name,
            body=body,
            provider_id=pid,
            received_at=received_at,
            ttl_days=ttl_days,
        )
        return self._store_and_publish(arrival.under(first))

    def _store_and_publish(
        self, arrival: _Arrival, *, marker: tuple[str, dict[str, Any]] | None = None
    ) -> Result:
        """Store, dedupe and publish one event; with ``marker`` (the body's, see
        :meth:`_first_copy`) created atomically with the record, or :class:`_Contended`."""
        source, key, body, now = arrival.source, arrival.key, arrival.body, arrival.now
        received_at = datetime.fromtimestamp(now, UTC)
        name, record, metadata = stored_forms(
            source,
            arrival.pid,
            key,
            body,
            received_at,
            self.raw.uri,
            ttl_days=self.settings.event_ttl_days,
            event_type=arrival.event_type,
            body_format=arrival.body_format,
        )
        record["publish_claimed_at"] = received_at  # the creator publishes: see publication.py
        # The message and the mark are built now, before the first wait: after each
        # backend answer the thread wakes into caches the emulators and neighbours have
        # used, and everything it still has to do then costs several times its CPU
        # (bench/results/profile/c1/).
        prepared = self.publication.prepare(
            key, source.name, now, message_attributes(record), arrival.payload
        )
        # Both writes are create-only, so they can run at the same time and a
        # retry of either is harmless. A duplicate still writes GCS: if the first
        # attempt stored the record but not the bytes, this attempt repairs it.
        # The upload is on the wire while the record is created: the two overlap in
        # this thread, and the answer waits for both.
        finish_put = self.raw.start_put(name, body, metadata)
        try:
            if marker is None:
                created = self.records.create(key, record)
            else:
                stamps = self.records.create_all(
                    [(*marker, self._bodies), (key, record, None)]
                )  # fmt: skip
                created = None if stamps is None else stamps[1]
        except BackendError:
            with contextlib.suppress(BackendError):
                finish_put()  # never leave a write unobserved
            raise
        try:
            finish_put()
        except BackendError:
            if created is not None:
                self.publication.release(key, created)  # the retry must not wait out our claim
            raise
        if marker is not None and created is None:
            raise _Contended

        if created is not None:
            # The mark is the one write after the publish: off the request path, it does
            # not delay the 202 (the event is safe once the message is out), and it rides
            # with the next batch of Firestore writes instead of costing a call of its own.
            self.publication.publish_prepared(prepared, created)
            return Result(Outcome.ACCEPTED, event_key=key)

        snapshot = self.records.get(key)
        if snapshot is None:
            # Expired (TTL) between create and get: let the provider try again.
            raise BackendError("firestore", "record vanished")
        if snapshot.data.get("status") != Status.RECEIVED.value:
            return Result(Outcome.DUPLICATE, event_key=key)
        # This attempt has just made sure the bytes exist under its own name: if the
        # record points elsewhere (a first attempt whose GCS write failed, on
        # another day), repair it with the claim.
        uri = self.raw.uri(name)
        repair = {"raw_uri": uri} if snapshot.data.get("raw_uri") != uri else None
        republished = self.publication.publish_received(snapshot, now, repair)
        return Result(
            Outcome.DUPLICATE,
            event_key=key,
            reason="republished" if republished else "publish_in_progress",
            republished=republished,
        )
