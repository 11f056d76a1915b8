"""Getting an event key onto the ``events`` topic, exactly once per need.

Three callers publish: the ingress (a new event, or a provider's retry of one
left ``received``), the reconciler (records stuck in ``received``), and replay
(``held``, ``failed``, ``dead``). They share these rules:

- **Claims.** A ``received`` record is published by whoever holds its claim
  (``publish_claimed_at``): its creator, or a later caller that finds no live
  claim (older than the lease: that request died). Taking a claim is a
  conditional write, so among concurrent callers one wins.
- **Publish, then mark.** The message goes out before the record says
  ``published``; a crash in between leaves a record that is re-published
  (harmless: delivery deduplicates), never one that says ``published``
  without a message.
- **Never backwards.** Every status write is conditional on the update time
  the caller read, so a record delivered meanwhile stays delivered.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from hookpress.backends import BackendError
from hookpress.backends.firestore import EventRecords, Snapshot
from hookpress.backends.pubsub import EventPublisher
from hookpress.events import Status, message_attributes
from hookpress.logs import Logger

__all__ = ["REPLAYABLE", "Prepared", "Publication"]

#: statuses replay may send again (``received`` goes through the claim instead)
REPLAYABLE = frozenset({Status.HELD.value, Status.FAILED.value, Status.DEAD.value})


def _updated(snapshot: Snapshot) -> float:
    """When the record last changed (its ``updated_at``, else Firestore's update time)."""
    updated = snapshot.data.get("updated_at")
    return (updated if isinstance(updated, datetime) else snapshot.update_time).timestamp()


def _stamp(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class Prepared(msgspec.Struct, frozen=True):
    """A new event's message labels and ``published`` mark, built before its record is created.

    The ingress builds them while the request's own work is under way: after
    each backend answer the thread wakes with caches others have used, and
    the less it has left to do then the less CPU it costs (measured:
    bench/results/profile/c1/).
    """

    key: str
    source: str
    attributes: dict[str, str] | None
    payload: dict[str, Any] | None
    mark: dict[str, Any]  # the mark's write, without its precondition (the claim)


class Publication:
    """Publishes keys and moves records to ``published``; thread-safe."""

    def __init__(
        self, records: EventRecords, publisher: EventPublisher, lease_s: float, log: Logger
    ) -> None:
        self.records = records
        self.publisher = publisher
        self.lease_s = lease_s
        self.log = log

    def publish_claimed(
        self,
        key: str,
        source: str,
        claim: datetime,
        now: float,
        *,
        mark_later: bool = False,
        attributes: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Publish a record this caller holds the claim on, then mark it ``published``.

        ``claim`` is the record's update time when the claim was taken; both
        writes are conditional on it. On a publish failure the claim is
        released and the BackendError re-raised. With ``mark_later``, the mark
        is not waited for: it goes with the next batch of Firestore writes
        (:meth:`EventRecords.transition_later`). Once the message is out the
        event is safe, and a lost mark only means a record still ``received``
        that a later duplicate or the reconciler publishes again (delivery
        deduplicates). ``attributes`` label the message (its lane); ``payload``
        is the warehouse's copy, when the settings carry it.
        """
        if mark_later:
            self.publish_prepared(self.prepare(key, source, now, attributes, payload), claim)
            return
        try:
            if payload is None:
                self.publisher.publish(key, source, attributes)
            else:
                self.publisher.publish(key, source, attributes, payload)
        except BackendError:
            self.release(key, claim)
            raise
        self._mark_published(key, claim, now)

    def prepare(
        self,
        key: str,
        source: str,
        now: float,
        attributes: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Prepared:
        """What :meth:`publish_prepared` sends for a record about to be created."""
        return Prepared(
            key,
            source,
            attributes,
            payload,
            self.records.later_write(key, self._published_fields(now)),
        )

    def publish_prepared(self, prepared: Prepared, claim: datetime) -> None:
        """:meth:`publish_claimed` with ``mark_later``, of what :meth:`prepare` built."""
        key = prepared.key
        try:
            if prepared.payload is None:
                self.publisher.publish(key, prepared.source, prepared.attributes)
            else:
                self.publisher.publish(key, prepared.source, prepared.attributes, prepared.payload)
        except BackendError:
            self.release(key, claim)
            raise

        def failed(exc: BackendError) -> None:
            self._mark_failed(key, exc)

        self.records.send_later(prepared.mark, claim, failed)

    def release(self, key: str, claim: datetime) -> None:
        """Give up a claim so the next caller publishes at once.

        If this write fails too, the lease runs out on its own.
        """
        with contextlib.suppress(BackendError):
            self.records.transition(key, claim, {"publish_claimed_at": None})

    def claim_live(self, snapshot: Snapshot, now: float) -> bool:
        """Whether someone holds an unexpired claim on this record."""
        claimed = snapshot.data.get("publish_claimed_at")
        return isinstance(claimed, datetime) and now - claimed.timestamp() < self.lease_s

    def publish_received(
        self, snapshot: Snapshot, now: float, extra: dict[str, Any] | None = None
    ) -> bool:
        """Publish a ``received`` record unless another caller holds or wins its claim.

        ``extra`` fields are written with the claim (the ingress repairs
        ``raw_uri`` this way). True if this call published.
        """
        if snapshot.data.get("status") != Status.RECEIVED.value or self.claim_live(snapshot, now):
            return False
        fields: dict[str, Any] = {"publish_claimed_at": _stamp(now), **(extra or {})}
        claim = self.records.transition(snapshot.key, snapshot.update_time, fields)
        if claim is None:
            return False  # another caller claimed it first
        self.publish_claimed(
            snapshot.key,
            str(snapshot.data.get("source", "")),
            claim,
            now,
            attributes=message_attributes(snapshot.data),
        )
        return True

    def replay(
        self, snapshot: Snapshot, now: float, *, stale_published_s: float | None = None
    ) -> bool:
        """Send a ``held``/``failed``/``dead`` record to delivery again (or a stuck ``received``).

        True if a message was published. ``delivered`` records are done.
        ``published`` ones are on their way and left alone, unless
        ``stale_published_s`` is given and the record has not changed for that
        long (no delivery attempt: its message was lost, e.g. with a deleted
        subscription); those are published again.
        """
        status = snapshot.data.get("status")
        if status == Status.RECEIVED.value:
            return self.publish_received(snapshot, now)
        stale = (
            status == Status.PUBLISHED.value
            and stale_published_s is not None
            and now - _updated(snapshot) >= stale_published_s
        )
        if status not in REPLAYABLE and not stale:
            return False
        self.publisher.publish(
            snapshot.key, str(snapshot.data.get("source", "")), message_attributes(snapshot.data)
        )
        stamp = _stamp(now)
        with contextlib.suppress(BackendError):
            # Conditional: if delivery already took it from here, that status stands.
            self.records.transition(
                snapshot.key,
                snapshot.update_time,
                {
                    "status": Status.PUBLISHED.value,
                    "replayed_at": stamp,
                    "replayed_from": status,
                    "updated_at": stamp,
                },
            )
        return True

    @staticmethod
    def _published_fields(now: float) -> dict[str, Any]:
        stamp = _stamp(now)
        return {"status": Status.PUBLISHED.value, "published_at": stamp, "updated_at": stamp}

    def _mark_published(self, key: str, claim: datetime, now: float) -> None:
        try:
            self.records.transition(key, claim, self._published_fields(now))
        except BackendError as exc:
            self._mark_failed(key, exc)

    def _mark_failed(self, key: str, exc: BackendError) -> None:
        # The message is out, so the event is safe; it may be published again
        # later, which delivery deduplicates.
        self.log.warning(
            "published but could not mark the record", event_key=key, reason=exc.backend
        )
