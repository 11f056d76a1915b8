"""Replay: send events to delivery again, idempotently and at a bounded rate.

Every republish goes through :class:`hookpress.publication.Publication`, so
replay obeys the same rules as the ingress and the reconciler: a ``held``,
``failed`` or ``dead`` record is published and marked ``published``
(conditionally: a record delivered meanwhile stays delivered); a ``received``
record is published only through its claim; ``delivered`` and ``published``
records are left alone. Replaying twice is therefore harmless, and delivery
deduplicates by event key anyway.

Where the keys come from:

- explicit keys, or a :class:`~hookpress.ops.selection.Selection` (status,
  time range, source);
- raw objects under GCS prefixes: a record that no longer exists (expired, or
  lost with a database) is rebuilt from the object and its metadata
  (``provider_event_id``, ``scheme``, ``event_type``), then published;
- the dead-letter pull subscription: a message is acknowledged only once its
  event has been republished (or is already delivered).

Keys and selections can also be delivered straight into WordPress, up to a
hundred events a request, through the plugin's batch route
(:mod:`hookpress.ops.direct`, set as ``direct``): the same records are
chosen, and the deliver function's own code delivers them and writes each
outcome on its record.

Each decision is an :class:`Item`; a :class:`Report` counts them.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Protocol

from hookpress.backends import BackendError
from hookpress.events import (
    RAW_NAME,
    Status,
    event_key,
    first_provider_id,
    marked_provider_id,
    message_attributes,
    new_record,
)
from hookpress.publication import REPLAYABLE, Publication

if TYPE_CHECKING:
    from hookpress.backends.firestore import EventRecords, Snapshot
    from hookpress.backends.gcs import RawStore
    from hookpress.deliver import Result
    from hookpress.ops.deadletters import DeadLetters
    from hookpress.ops.direct import DirectDelivery
    from hookpress.ops.selection import Selection

__all__ = ["Action", "Item", "Progress", "RateLimiter", "Replayer", "Report"]


class Action(StrEnum):
    """What replay did with one event (or would do, with ``dry_run``)."""

    REPLAYED = "replayed"  # sent to delivery again
    REBUILT = "rebuilt"  # record recreated from its raw object, then sent
    WOULD_REPLAY = "would_replay"
    WOULD_REBUILD = "would_rebuild"
    DELIVERED = "delivered"  # skipped: already delivered
    IN_FLIGHT = "in_flight"  # skipped: published, or being published by someone else
    COPY = "copy"  # skipped: its body is another event's (the body's marker names that one)
    PENDING = "pending"  # dead letter left in the subscription: its record is not dead yet
    MISSING = "missing"  # no record and nothing to rebuild it from
    ERROR = "error"  # a backend failed, or the data is inconsistent

    @property
    def ok(self) -> bool:
        """Whether nothing is left to do for this event."""
        return self not in {Action.PENDING, Action.MISSING, Action.ERROR}


@dataclass(frozen=True, slots=True)
class Item:
    """One decision: the event key, what was done, the record's status before, why."""

    key: str
    action: Action
    status: str | None = None
    source: str | None = None
    detail: str | None = None


@dataclass
class Report:
    """Every item of a run, and the counts per action."""

    dry_run: bool = False
    items: list[Item] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early

    def add(self, item: Item) -> None:
        """Record one decision."""
        self.items.append(item)

    @property
    def counts(self) -> Counter[Action]:
        """How many items per action."""
        return Counter(i.action for i in self.items)

    @property
    def ok(self) -> bool:
        """True when every selected event is replayed or needs nothing."""
        return self.aborted is None and all(i.action.ok for i in self.items)


class Progress(Protocol):
    """Told the total once it is known, then each item as it is decided."""

    def total(self, count: int | None) -> None:
        """How many items to expect (None: unknown, e.g. a subscription)."""
        ...

    def advance(self, item: Item) -> None:
        """One more item decided."""
        ...


class _Silent:
    def total(self, count: int | None) -> None:
        return None

    def advance(self, item: Item) -> None:
        return None


class RateLimiter:
    """At most ``per_second`` calls of :meth:`wait` per second, evenly spaced (None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("the rate must be positive")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Return when the next call is allowed."""
        if not self._interval:
            return
        now = self._clock()
        if self._next is not None and self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


class _TooManyErrors(Exception):
    pass


@dataclass
class Replayer:
    """Replays events of one stack. ``raw`` is needed only to replay from GCS."""

    records: EventRecords
    publication: Publication
    raw: RawStore | None = None
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))
    dry_run: bool = False
    schemes: Mapping[str, str] = field(default_factory=dict)  # source → scheme, for old objects
    ttl_days: int = 30
    # Replay ``published`` records untouched this long (None: never touch published ones).
    stale_published_s: float | None = None
    clock: Callable[[], float] = time.time
    max_consecutive_errors: int = 5
    #: Deliver keys and selections straight into WordPress in batches (None: republish).
    direct: DirectDelivery | None = None
    #: With ``direct``: a batch leaves when it holds this many events or is this old.
    batch_size: int = 100
    batch_window_s: float = 1.0
    _errors: int = field(default=0, init=False, repr=False)

    # -- entry points --------------------------------------------------------------------

    def replay_keys(self, keys: Iterable[str], progress: Progress | None = None) -> Report:
        """Replay these event keys (duplicates are handled once)."""
        progress = progress or _Silent()
        unique = list(dict.fromkeys(keys))
        progress.total(len(unique))
        report = Report(dry_run=self.dry_run)
        if self.direct is not None and not self.dry_run:
            return self._run_direct(report, progress, unique, self.direct)
        return self._run(report, progress, ((k, self._replay_key) for k in unique))

    def replay_selection(self, selection: Selection, progress: Progress | None = None) -> Report:
        """Replay the selected records (read first, then each re-read just before replay)."""
        from hookpress.ops.selection import select

        keys = [s.key for s in select(self.records, selection)]
        return self.replay_keys(keys, progress)

    def replay_gcs(
        self,
        prefixes: Sequence[str],
        sources: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> Report:
        """Replay every raw object under ``prefixes``, rebuilding records that are gone."""
        if self.raw is None:
            raise ValueError("replay from GCS needs the raw store")
        progress = progress or _Silent()
        names: dict[str, tuple[str, str]] = {}
        for prefix in prefixes:
            for name in self.raw.list(prefix):
                match = RAW_NAME.match(name)
                if match is None or (sources and match["source"] not in sources):
                    continue
                names[name] = (match["key"], match["source"])
        progress.total(len(names))
        report = Report(dry_run=self.dry_run)

        def work(name: str) -> Callable[[str], Item]:
            key, source = names[name]
            return lambda _key: self._replay_raw(name, key, source)

        return self._run(report, progress, ((names[n][0], work(n)) for n in sorted(names)))

    def replay_dead_letters(
        self, queue: DeadLetters, limit: int | None = None, progress: Progress | None = None
    ) -> Report:
        """Drain the dead-letter subscription: republish, then acknowledge.

        A message whose record is delivered is acknowledged too (nothing is
        left to do); one whose record is missing, not yet marked ``dead``, or
        could not be republished is given back at the end.
        """
        progress = progress or _Silent()
        progress.total(None)
        report = Report(dry_run=self.dry_run)
        seen: set[str] = set()
        give_back: list[str] = []
        empty_pulls = 0
        try:
            while limit is None or len(seen) < limit:
                batch = queue.pull(100 if limit is None else min(100, limit - len(seen)))
                if not batch:
                    empty_pulls += 1
                    if empty_pulls >= 2:
                        break
                    continue
                empty_pulls = 0
                fresh = [m for m in batch if m.message_id not in seen]
                give_back.extend(m.ack_id for m in batch if m.message_id in seen)
                if not fresh:
                    break  # only messages this run already gave up on
                done: list[str] = []
                for message in fresh:
                    seen.add(message.message_id)
                    item = self._dead_letter(message.event_key)
                    report.add(item)
                    progress.advance(item)
                    if item.action in {Action.REPLAYED, Action.DELIVERED} and not self.dry_run:
                        done.append(message.ack_id)
                    else:
                        give_back.append(message.ack_id)
                queue.ack(done)
                if self._errors >= self.max_consecutive_errors:
                    report.aborted = f"{self._errors} backend errors in a row"
                    break
        except BackendError as exc:
            report.aborted = f"{exc.backend} failed: {exc.detail}"
        finally:
            try:
                queue.release(give_back)
            except BackendError as exc:
                # They come back by themselves when their ack deadline passes.
                report.aborted = report.aborted or f"could not give messages back: {exc.backend}"
        return report

    # -- the decisions -------------------------------------------------------------------

    def _run(
        self,
        report: Report,
        progress: Progress,
        work: Iterable[tuple[str, Callable[[str], Item]]],
    ) -> Report:
        for key, decide in work:
            item = decide(key)
            report.add(item)
            progress.advance(item)
            if self._errors >= self.max_consecutive_errors:
                report.aborted = f"{self._errors} backend errors in a row"
                break
        return report

    def _run_direct(
        self, report: Report, progress: Progress, keys: list[str], direct: DirectDelivery
    ) -> Report:
        """Decide each key as a republish would, then deliver the chosen ones in batches."""
        queue: list[Item] = []  # chosen: the record's status and source before
        opened = 0.0

        def flush() -> None:
            delivered = direct.deliver(i.key for i in queue)
            for before, (_, result) in zip(queue, delivered, strict=True):
                item = _delivered_item(before, result)
                self._errors = self._errors + 1 if item.action is Action.ERROR else 0
                report.add(item)
                progress.advance(item)
            queue.clear()

        for key in keys:
            decided = self._guard(key, partial(self._choose, key))
            if decided.action is Action.WOULD_REPLAY:
                self.limiter.wait()
                if not queue:
                    opened = time.monotonic()
                queue.append(decided)
            else:
                report.add(decided)
                progress.advance(decided)
            if queue and (
                len(queue) >= self.batch_size or time.monotonic() - opened >= self.batch_window_s
            ):
                flush()
            if self._errors >= self.max_consecutive_errors:
                report.aborted = f"{self._errors} errors in a row"
                break
        if queue and report.aborted is None:
            flush()
        return report

    def _choose(self, key: str) -> Item:
        snapshot = self.records.get(key)
        if snapshot is None:
            return Item(key, Action.MISSING, detail="no record")
        return self._gate(snapshot) or self._item(snapshot, Action.WOULD_REPLAY)

    def _guard(self, key: str, decide: Callable[[], Item]) -> Item:
        try:
            item = decide()
        except BackendError as exc:
            self._errors += 1
            return Item(key, Action.ERROR, detail=f"{exc.backend} failed: {exc.detail}")
        self._errors = 0
        return item

    def _replay_key(self, key: str) -> Item:
        def decide() -> Item:
            snapshot = self.records.get(key)
            if snapshot is None:
                return Item(key, Action.MISSING, detail="no record")
            return self._replay_snapshot(snapshot)

        return self._guard(key, decide)

    def _replay_snapshot(self, snapshot: Snapshot) -> Item:
        decided = self._gate(snapshot)
        if decided is not None:
            return decided
        if self.dry_run:
            return self._item(snapshot, Action.WOULD_REPLAY)
        self.limiter.wait()
        if self.publication.replay(
            snapshot, self.clock(), stale_published_s=self.stale_published_s
        ):
            return self._item(snapshot, Action.REPLAYED)
        return self._item(snapshot, Action.IN_FLIGHT, "another caller published it first")

    def _gate(self, snapshot: Snapshot) -> Item | None:
        """Why this record is not sent again (an Item), or None when it is."""
        status = snapshot.data.get("status")
        if status == Status.DELIVERED.value:
            return self._item(snapshot, Action.DELIVERED)
        now = self.clock()
        if status == Status.PUBLISHED.value and not self._stale(snapshot, now):
            return self._item(snapshot, Action.IN_FLIGHT, "published, on its way to WordPress")
        if status == Status.RECEIVED.value and self.publication.claim_live(snapshot, now):
            return self._item(snapshot, Action.IN_FLIGHT, "being published")
        if status not in {Status.RECEIVED.value, Status.PUBLISHED.value} | REPLAYABLE:
            return self._item(snapshot, Action.ERROR, f"unknown status {status!r}")
        return None

    @staticmethod
    def _item(snapshot: Snapshot, action: Action, detail: str | None = None) -> Item:
        status = snapshot.data.get("status")
        source = snapshot.data.get("source")
        return Item(
            snapshot.key,
            action,
            str(status) if status else None,
            str(source) if source else None,
            detail,
        )

    def _stale(self, snapshot: Snapshot, now: float) -> bool:
        if self.stale_published_s is None:
            return False
        updated = snapshot.data.get("updated_at")
        when = updated if isinstance(updated, datetime) else snapshot.update_time
        return now - when.timestamp() >= self.stale_published_s

    def _replay_raw(self, name: str, key: str, source: str) -> Item:
        def decide() -> Item:
            snapshot = self.records.get(key)
            if snapshot is not None:
                return self._replay_snapshot(snapshot)
            return self._rebuild(name, key, source)

        return self._guard(key, decide)

    def _rebuild(self, name: str, key: str, source: str) -> Item:
        if self.raw is None:  # pragma: no cover - replay_gcs checks
            raise ValueError("no raw store")
        from hookpress.payloads import MalformedBody, parse_payload
        from hookpress.providers import PROVIDERS

        found = self.raw.get_with_metadata(name)
        if found is None:
            return Item(key, Action.MISSING, source=source, detail="raw object vanished")
        body, metadata = found.data, found.metadata
        # ``schemes`` maps a source to its provider (a scheme name is a provider too).
        provider = metadata.get("provider") or metadata.get("scheme") or self.schemes.get(source)
        scheme = metadata.get("scheme") or (
            PROVIDERS[provider].scheme_name if provider and provider in PROVIDERS else None
        )
        body_format = metadata.get("body_format") or "json"
        pid = metadata.get("provider_event_id")
        if not pid:
            # Objects stored before the metadata existed: the payload's id, if it makes the key.
            if provider is None or provider not in PROVIDERS:
                return Item(key, Action.ERROR, source=source, detail="no metadata and no scheme")
            try:
                payload = parse_payload(body, body_format)
                pid = PROVIDERS[provider].event_id(None, {}, payload, body)
            except (MalformedBody, ValueError):
                return Item(key, Action.ERROR, source=source, detail="no metadata, bad payload")
        if event_key(source, pid) != key:
            return Item(
                key,
                Action.ERROR,
                source=source,
                detail="the object's provider id gives another key",
            )
        if provider is not None and provider in PROVIDERS and PROVIDERS[provider].id_unsigned:
            # The ingress's rule for ids the signature does not cover: a body is the event
            # of its first id. An object under another id's name is a copy an ingress
            # stored and may not delete (hookpress.ingress._pipeline, _first_copy).
            first = self._first_id(source, body, pid)
            if first != pid:
                return Item(
                    key,
                    Action.COPY,
                    source=source,
                    detail=f"its body is event {event_key(source, first)}'s",
                )
        if self.dry_run:
            return Item(key, Action.WOULD_REBUILD, source=source)
        self.limiter.wait()
        now = self.clock()
        received_at = _received_at(metadata) or found.created or datetime.fromtimestamp(now, UTC)
        record = new_record(
            source=source,
            scheme=scheme or "",
            provider_id=pid,
            received_at=received_at,
            raw_uri=self.raw.uri(name),
            body_sha256=hashlib.sha256(body).hexdigest(),
            ttl_days=self.ttl_days,
            event_type=metadata.get("event_type"),
            provider=provider,
            lane=metadata.get("lane") or "normal",
            body_format=body_format,
        )
        # The original receipt time keeps the WordPress record identical to the first
        # delivery's; the lifetime starts now, or a rebuilt old event would expire at once.
        stamp = datetime.fromtimestamp(now, UTC)
        record["expire_at"] = stamp + timedelta(days=self.ttl_days)
        record["updated_at"] = stamp
        # Held by this caller while it publishes, as the ingress does (see publication.py).
        record["publish_claimed_at"] = stamp
        record["rebuilt_from"] = self.raw.uri(name)
        record["rebuilt_at"] = stamp
        created = self.records.create(key, record)
        if created is None:
            snapshot = self.records.get(key)  # someone recreated it meanwhile
            if snapshot is None:
                return Item(key, Action.ERROR, source=source, detail="record vanished")
            return self._replay_snapshot(snapshot)
        self.publication.publish_claimed(
            key, source, created, now, attributes=message_attributes(record)
        )
        return Item(key, Action.REBUILT, Status.RECEIVED.value, source)

    def _first_id(self, source: str, body: bytes, pid: str) -> str:
        """The id the body's marker names; a rebuild creates the marker when there is none
        (a dry run only reads it). Its lifetime starts now, as the rebuilt record's does."""
        if not self.dry_run:
            return first_provider_id(
                self.records,
                id_unsigned=True,
                source=source,
                body=body,
                provider_id=pid,
                received_at=datetime.fromtimestamp(self.clock(), UTC),
                ttl_days=self.ttl_days,
            )
        return marked_provider_id(self.records, source, body) or pid

    def _dead_letter(self, key: str | None) -> Item:
        if key is None:
            return Item("-", Action.ERROR, detail="a message without an event key")

        def decide() -> Item:
            snapshot = self.records.get(key)
            if snapshot is None:
                return Item(key, Action.MISSING, detail="no record (expired?)")
            item = self._replay_snapshot(snapshot)
            if item.action is Action.IN_FLIGHT:
                return Item(key, Action.PENDING, item.status, item.source, "not marked dead yet")
            return item

        return self._guard(key, decide)


def _delivered_item(before: Item, result: Result) -> Item:
    """The report's item for an event delivered straight to WordPress."""
    from hookpress.deliver import Outcome
    from hookpress.ops.direct import outcome_text

    action = {
        Outcome.DELIVERED: Action.REPLAYED,
        Outcome.ALREADY_DELIVERED: Action.DELIVERED,
        Outcome.HELD: Action.PENDING,  # paused: held, replayed by `hookpress resume`
        Outcome.UNKNOWN_EVENT: Action.MISSING,
    }.get(result.outcome, Action.ERROR)
    return Item(before.key, action, before.status, before.source, outcome_text(result))


def _received_at(metadata: Mapping[str, str]) -> datetime | None:
    """The ingress's receipt time, kept in the object's metadata."""
    text = metadata.get("received_at")
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
