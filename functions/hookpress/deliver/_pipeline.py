"""The deliver use case: one pushed event key in, one WordPress write (at most) out.

``Deliverer.deliver`` loads the record and the raw payload, builds the
WordPress record, posts it with the event key as ``Idempotency-Key``, and
records the outcome on the event. What it returns tells the HTTP layer
whether Pub/Sub should consider the message done (ack) or try again (nack).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec

from hookpress.backends import BackendError
from hookpress.backends.firestore import EventRecords, Snapshot
from hookpress.backends.gcs import RawStore
from hookpress.backends.secrets import CachedSecrets
from hookpress.deliver._breaker import Breaker
from hookpress.deliver._envelope import PushMessage
from hookpress.deliver._errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from hookpress.deliver._wordpress import Delivered, WordPressClient
from hookpress.deliver.transforms import Event, UnusablePayload, build_body
from hookpress.events import Status, labelled_raw_name
from hookpress.logs import Logger
from hookpress.payloads import MalformedBody, parse_payload
from hookpress.settings import DeliverSettings

__all__ = ["CONTROL_DOCUMENT", "Deliverer", "Outcome", "Result"]

CONTROL_DOCUMENT = "delivery"  # control/{this}: {"paused": bool, ...}

#: statuses another push's verdict leaves a record in: a late non-delivery never overwrites
#: one it did not read (``_settle``)
_VERDICTS = frozenset({Status.FAILED.value, Status.DEAD.value, Status.HELD.value})

T = TypeVar("T")


class Outcome(StrEnum):
    """What became of a pushed message."""

    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"
    ALREADY_SETTLED = "already_settled"  # a dead letter for a failed, held or dead event
    HELD = "held"
    FAILED = "failed"
    DEAD = "dead"
    RETRY = "retry"
    BREAKER_OPEN = "breaker_open"
    UNKNOWN_EVENT = "unknown_event"
    UNAVAILABLE = "unavailable"

    @property
    def ack(self) -> bool:
        """Whether Pub/Sub should consider the message done."""
        return self not in {Outcome.RETRY, Outcome.BREAKER_OPEN, Outcome.UNAVAILABLE}


class Result(msgspec.Struct, frozen=True):
    """The outcome and what the log line needs."""

    outcome: Outcome
    reason: str | None = None
    downstream_status: int | None = None
    wp_post_id: int | None = None
    wordpress_ms: float | None = None  # how long WordPress took to answer the post


class _OnWire(Generic[T]):
    """A read sent ahead of need: its answer read once, by whoever asks first."""

    __slots__ = ("_error", "_finish", "_value")

    def __init__(self, finish: Callable[[], T]) -> None:
        self._finish: Callable[[], T] | None = finish
        self._value: T | None = None
        self._error: BackendError | None = None

    def result(self) -> T:
        """The answer; BackendError if the read failed."""
        finish, self._finish = self._finish, None
        if finish is not None:
            try:
                self._value = finish()
            except BackendError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set whenever no error

    def drain(self) -> None:
        """Read the answer if nobody did (the push ended before it was needed): the
        connection goes back to its pool only once its answer is read."""
        with contextlib.suppress(BackendError):
            self.result()


class _RawRead(msgspec.Struct, frozen=True):
    """The raw object's read, sent with the record's: for the object the message names."""

    name: str
    read: _OnWire[bytes | None]


class Deliverer:
    """One per function instance; safe to call from many threads."""

    def __init__(
        self,
        settings: DeliverSettings,
        *,
        records: EventRecords,
        raw: RawStore,
        secrets: CachedSecrets,
        wordpress: WordPressClient,
        breaker: Breaker,
        log: Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.records = records
        self.raw = raw
        self.secrets = secrets
        self.wordpress = wordpress
        self.breaker = breaker
        self.log = log
        self.clock = clock
        self._control: tuple[float, bool] | None = None
        self._control_lock = threading.Lock()

    def warm(self) -> list[threading.Thread]:
        """Start, in threads, what an instance's first push would otherwise wait for one
        after another: connections to Firestore (two: the record's read and the control
        document's go out together) and to Cloud Storage, with the access token; unless
        deliveries are paused by the environment, WordPress's connection, its TLS context
        made first, and the application password's read. Returns the started threads."""
        threads = self.records.warm(connections=2) + self.raw.warm()
        if not self.settings.paused:
            threads += self.wordpress.warm()
            password = self.secrets.prefetch(self.settings.wp_app_password_secret)
            threads += [password] if password is not None else []
        return threads

    # -- the pause switch -------------------------------------------------------

    def paused(self, read: _OnWire[Snapshot | None] | None = None) -> bool:
        """The environment switch, or the control document (re-read every few seconds);
        ``read``: the document's read already on the wire (:meth:`_control_read`)."""
        known = self._known_pause()
        if known is not None:
            return known
        now = time.monotonic()
        with self._control_lock:
            if read is not None:
                snap = read.result()
            else:
                snap = self.records.get(
                    CONTROL_DOCUMENT, collection=self.settings.control_collection
                )
            paused = bool(snap and snap.data.get("paused"))
            self._control = (now, paused)
            return paused

    def _known_pause(self) -> bool | None:
        """The switch without a read: the environment's, or a cached document still fresh."""
        if self.settings.paused:
            return True
        cached = self._control
        if cached is not None and time.monotonic() - cached[0] < self.settings.control_ttl_s:
            return cached[1]
        return None

    def _control_read(self) -> _OnWire[Snapshot | None] | None:
        """The control document's read, sent now if :meth:`paused` will need it.

        Due on an instance's first push and every ``control_ttl_s`` after: sent
        with the record's read, it costs the push no round trip of its own.
        """
        if self._known_pause() is not None:
            return None
        return _OnWire(
            self.records.start_get(CONTROL_DOCUMENT, collection=self.settings.control_collection)
        )

    def _raw_read(self, message: PushMessage) -> _RawRead | None:
        """The raw object's read, sent now, if the message's labels name the object.

        The record's read and this one are then on the wire together: the push
        waits for one round trip instead of two. The record still decides: its
        ``raw_uri`` names another object only if a provider's retry repaired it
        (then that one is read as before), and a push that turns out to need no
        payload (delivered, unknown, paused by a switch not yet read) just reads
        the answer and drops it. While deliveries are known to be paused, no read
        is sent.
        """
        if self._known_pause():
            return None  # held without reading the payload: no read to waste per push
        name = labelled_raw_name(message.event_key, message.attributes)
        if name is None:
            return None
        try:
            return _RawRead(name, _OnWire(self.raw.start_get(name)))
        except BackendError:
            return None  # not sent: the record's raw_uri is read the ordinary way, or fails

    # -- the use case -------------------------------------------------------------

    def deliver(self, message: PushMessage, *, dead_letter: bool = False) -> Result:
        """Handle one push; ``dead_letter`` when it comes from the dead-letter topic."""
        control: _OnWire[Snapshot | None] | None = None
        raw: _RawRead | None = None
        try:
            if not dead_letter:
                control = self._control_read()
                raw = self._raw_read(message)
            snapshot = self.records.get(message.event_key)
            if snapshot is None:
                # Nothing to deliver (expired by TTL, or never ours): retrying cannot help.
                return Result(Outcome.UNKNOWN_EVENT, reason="no_record")
            status = snapshot.data.get("status")
            if status == Status.DELIVERED.value:
                return Result(Outcome.ALREADY_DELIVERED)
            if dead_letter:
                if status in _VERDICTS:
                    # Another copy's verdict stands (they leave only by replay), with its
                    # reason: a 422 is what on-call needs to read, not exhausted attempts.
                    return Result(Outcome.ALREADY_SETTLED, reason=f"already_{status}")
                self._settle(snapshot, Status.DEAD, last_error="attempts_exhausted")
                return Result(Outcome.DEAD, reason="attempts_exhausted")
            if self.paused(control):
                self._settle(snapshot, Status.HELD, last_error="paused")
                return Result(Outcome.HELD, reason="paused")
            try:
                content = self._wp_record(snapshot, raw)
            except PermanentDeliveryError as exc:
                # The payload, not WordPress: no retry can help, and the breaker
                # (which judges WordPress) is not asked, so no probe slot is taken.
                self._settle(snapshot, Status.FAILED, error=exc)
                return Result(Outcome.FAILED, reason=exc.reason)
            if not self.breaker.allow():
                return Result(Outcome.BREAKER_OPEN, reason="breaker_open")
            return self._attempt(snapshot, content)
        except BackendError as exc:
            return Result(Outcome.UNAVAILABLE, reason=exc.backend)
        finally:
            if control is not None:
                control.drain()
            if raw is not None:
                raw.read.drain()

    def _wp_record(self, snapshot: Snapshot, raw: _RawRead | None = None) -> bytes:
        """The WordPress record of this event, as the bytes to POST (``raw``: the object's
        read already on the wire, used if it is the object the record names)."""
        data = snapshot.data
        try:
            name = self.raw.name_of(str(data.get("raw_uri", "")))
        except ValueError:
            raise PermanentDeliveryError("raw_uri_not_in_bucket") from None
        body = raw.read.result() if raw is not None and raw.name == name else self.raw.get(name)
        if body is None:
            raise PermanentDeliveryError("raw_payload_missing")
        try:
            payload = parse_payload(body, str(data.get("body_format") or "json"))
        except MalformedBody as exc:
            raise PermanentDeliveryError(f"raw_payload_{exc.reason}") from None
        received = data.get("received_at")
        event = Event(
            source=str(data.get("source")),
            scheme=str(data.get("scheme", "")),
            provider_event_id=str(data.get("provider_event_id")),
            event_type=data.get("event_type"),
            payload=payload,
            received_at=received if isinstance(received, datetime) else datetime.now(UTC),
            provider=str(data.get("provider") or ""),
        )
        try:
            return build_body(event)[1]
        except UnusablePayload as exc:
            raise PermanentDeliveryError(f"unusable_payload:{exc.reason}") from None

    def _post(self, content: bytes, key: str) -> Delivered:
        secret = self.settings.wp_app_password_secret
        passwords = self.secrets.get(secret)
        if not passwords:
            raise BackendError("secrets", "no application password")
        try:
            return self.wordpress.post_body(content, key, passwords[0])
        except AuthenticationFailed:
            # Perhaps rotated a moment ago: re-read (rate-limited) and try once more.
            fresh = self.secrets.refresh_after_failure(secret)
            if not fresh:
                raise
            return self.wordpress.post_body(content, key, fresh[0])

    def _attempt(self, snapshot: Snapshot, content: bytes) -> Result:
        """Post once. The breaker hears WordPress's verdict, or gets its probe slot back."""
        key = snapshot.key
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            delivered = self._post(content, key)
        except RetryableDeliveryError as exc:
            waited = took()
            self.breaker.failure()
            self._settle(snapshot, None, error=exc)
            return Result(
                Outcome.RETRY, reason=exc.reason, downstream_status=exc.status, wordpress_ms=waited
            )
        except PermanentDeliveryError as exc:
            waited = took()
            self.breaker.success()  # WordPress answered
            self._settle(snapshot, Status.FAILED, error=exc)
            return Result(
                Outcome.FAILED, reason=exc.reason, downstream_status=exc.status, wordpress_ms=waited
            )
        except BaseException:
            # No verdict on WordPress (the secrets backend failed, or anything unforeseen):
            # whatever it was, a half-open breaker must not keep its one probe slot taken.
            self.breaker.abandon()
            raise
        waited = took()
        self.breaker.success()
        now = datetime.fromtimestamp(self.clock(), UTC)
        self.records.set(
            key,
            {
                "status": Status.DELIVERED.value,
                "attempts": self.records.increment(1),
                "last_error": None,
                "downstream_status": delivered.status,
                "downstream_body": delivered.body,
                "wp_post_id": delivered.post_id,
                "delivered_at": now,
                "updated_at": now,
            },
        )
        return Result(
            Outcome.DELIVERED,
            downstream_status=delivered.status,
            wp_post_id=delivered.post_id,
            wordpress_ms=waited,
        )

    def _settle(
        self,
        snapshot: Snapshot,
        status: Status | None,
        *,
        error: DeliveryError | None = None,
        last_error: str | None = None,
    ) -> None:
        """Record a non-delivery on the event, unless another push recorded a verdict since
        ``snapshot`` was read: ``delivered``, or a ``failed``, ``dead`` or ``held`` this push
        did not see (DESIGN's status machine: those leave only by replay). The write is
        conditional on ``snapshot``'s update time; the record is read again only if it
        changed since."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        fields: dict[str, Any] = {"updated_at": now}
        if status is not None:
            fields["status"] = status.value
        elif snapshot.data.get("status") == Status.RECEIVED.value:
            fields["status"] = Status.PUBLISHED.value  # it was published: here it is
        if error is not None:
            fields["attempts"] = self.records.increment(1)
            fields["last_error"] = str(error)[:500]
            fields["downstream_status"] = error.status
            fields["downstream_body"] = error.body
        elif last_error is not None:
            fields["last_error"] = last_error
        seen = snapshot.data.get("status")
        self.records.update_unless(
            snapshot.key,
            fields,
            unless_status=(_VERDICTS - {seen}) | {Status.DELIVERED.value},
            known=snapshot,
        )
