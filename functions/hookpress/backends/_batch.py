"""Natural batching ("group commit") of the calls concurrent requests make at once.

A request thread submits its item and waits for its own result. If no call
is in flight, it sends at once, alone, exactly as an unbatched call would: no
window, no added latency. Items submitted while a call is in flight queue up
and go together in the next call, sent by the first of their threads (the
previous sender hands over as soon as its call returns). Under load, one
HTTP call carries many requests' items; at concurrency 1 nothing changes.

Items can also be submitted *without waiting* (:meth:`GroupCall.later`):
they ride along with the next call, or a background thread sends them once
they are ``flush_after_s`` old if no call came (within twice that). The
ingress uses this for the write that marks a record ``published``, which
nothing waits for. The thread ticks every ``flush_after_s`` while such
items keep coming and sleeps, untimed, once a tick finds none queued and
none added since the last: it is not woken for every item (at concurrency 1
that was two wake-ups per event, each an item the next call carried anyway).

Items sharing a key (the same document) never go in the same call: Firestore
refuses two writes to one document in one batch. A later one waits a round.
An item may name several keys (a commit of a group of documents); it waits
if any of them is taken.
With ``size``, a call carries items up to ``max_size`` in all (an item
larger than that goes alone): Pub/Sub bounds a publish request's bytes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from hookpress.backends._errors import BackendError

__all__ = ["GroupCall"]

Item = TypeVar("Item")
Out = TypeVar("Out")


class _Done:
    """A one-shot signal: a bare lock held until set (cheaper than an Event's Condition)."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._lock.release()  # let any other waiter through too
            return True
        return self._set


class _Slot(Generic[Item, Out]):
    __slots__ = ("done", "error", "item", "lead", "on_error", "result", "since")

    def __init__(self, item: Item, on_error: Callable[[BackendError], None] | None = None) -> None:
        self.item = item
        self.result: Out | None = None
        self.error: BackendError | None = None
        self.done = _Done()
        self.lead = False
        self.on_error = on_error
        self.since = time.monotonic()


class GroupCall(Generic[Item, Out]):
    """Sends items in batches through ``send``; thread-safe.

    ``send(items)`` returns one result per item, in order: a value, or a
    :class:`BackendError` for that item alone; raising BackendError fails the
    whole batch. ``keys(item)`` names what an item writes (None: no limit);
    ``size(item)`` counts against ``max_size`` per call.
    """

    def __init__(
        self,
        service: str,
        send: Callable[[Sequence[Item]], Sequence[Out | BackendError]],
        *,
        max_items: int,
        wait_s: float,
        keys: Callable[[Item], tuple[Hashable, ...]] | None = None,
        flush_after_s: float = 0.1,
        size: Callable[[Item], int] | None = None,
        max_size: int = 0,
    ) -> None:
        self._service = service
        self._send = send
        self._max = max_items
        self._wait = wait_s
        self._keys = keys
        self._flush_after = flush_after_s
        self._size = size
        self._max_size = max_size
        self._lock = threading.Lock()
        self._waiting: deque[_Slot[Item, Out]] = deque()
        self._deferred: deque[_Slot[Item, Out]] = deque()
        self._busy = False
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._armed = False  # the flusher is ticking (not waiting on _wake)
        self._fresh = False  # an item was deferred since the flusher's last tick
        self.calls = 0  # how many sends (for tests and the benchmark)

    def __call__(self, item: Item) -> Out:
        """Send ``item`` (alone, or with whatever queued meanwhile) and return its result."""
        slot: _Slot[Item, Out] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            if not slot.done.wait(self._wait):
                with self._lock:
                    if not slot.lead and slot in self._waiting:
                        self._waiting.remove(slot)  # never handed the lead, never sent
                        raise BackendError(self._service, "batched call timed out")
                # Taken into a call in flight (its sender has its own timeouts), or just
                # handed the lead: either way done is, or will shortly be, set.
                slot.done.wait()
            if not slot.lead:
                return self._outcome(slot)
        self._round()
        return self._outcome(slot)

    def later(self, item: Item, on_error: Callable[[BackendError], None] | None = None) -> None:
        """Queue ``item`` without waiting; ``on_error`` hears of its failure, if any."""
        with self._lock:
            self._deferred.append(_Slot(item, on_error))
            self._fresh = True
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name=f"{self._service}-flush", daemon=True
                )
                self._flusher.start()
            wake = not self._armed
            self._armed = True
        if wake:  # otherwise the flusher is ticking and sees it at its next tick
            self._wake.set()

    def _outcome(self, slot: _Slot[Item, Out]) -> Out:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set whenever error is None

    def _take(self) -> list[_Slot[Item, Out]]:
        """The next batch (caller holds the lock): waiting items first, then deferred ones."""
        batch: list[_Slot[Item, Out]] = []
        keys: set[Hashable] = set()
        total = 0
        full = False
        for queue in (self._waiting, self._deferred):
            kept: list[_Slot[Item, Out]] = []
            while queue and len(batch) < self._max:
                slot = queue[0]
                mine = self._keys(slot.item) if self._keys is not None else ()
                if not keys.isdisjoint(mine):
                    kept.append(queue.popleft())  # a second write of the same key: next round
                    continue
                size = self._size(slot.item) if self._size is not None else 0
                if batch and total + size > self._max_size and self._size is not None:
                    full = True  # this one and the rest go in the next round
                    break
                queue.popleft()
                total += size
                keys.update(mine)
                batch.append(slot)
            queue.extendleft(reversed(kept))
            if full:
                break
        return batch

    def _round(self) -> None:
        """Send one batch (this thread leads), then hand the lead to the next waiter."""
        with self._lock:
            batch = self._take()
        if batch:
            self._send_batch(batch)
        with self._lock:
            if self._waiting:
                nxt = self._waiting[0]
                nxt.lead = True
                nxt.done.set()  # it wakes, sees lead, and sends the next round
            else:
                self._busy = False  # deferred items left over: the (armed) flusher's

    def _send_batch(self, batch: list[_Slot[Item, Out]]) -> None:
        self.calls += 1
        try:
            results = self._send([s.item for s in batch])
            if len(results) != len(batch):
                raise BackendError(self._service, "batch answered the wrong number of results")
        except BackendError as exc:
            results = [exc] * len(batch)
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, BackendError):
                slot.error = result
                if slot.on_error is not None:
                    slot.on_error(result)
            else:
                slot.result = result
            slot.lead = False
            slot.done.set()

    def _flush_loop(self) -> None:
        """Send deferred items nobody carried along within ``flush_after_s``."""
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:  # armed: one tick per flush_after_s
                time.sleep(self._flush_after)
                with self._lock:
                    fresh, self._fresh = self._fresh, False
                    due = self._deferred and (
                        self._deferred[0].since + self._flush_after <= time.monotonic()
                    )
                    lead = bool(due) and not self._busy
                    if lead:
                        self._busy = True
                    elif not self._deferred and not fresh:
                        self._armed = False  # quiet for a whole tick: wait for later()
                        break
                if lead:
                    self._round()
