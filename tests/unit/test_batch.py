"""Natural batching: alone when idle, together under load, never two writes of one key."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from hookpress.backends import BackendError
from hookpress.backends._batch import GroupCall


class Backend:
    """Records every call; answers each item with its upper-case, slowly."""

    def __init__(self, delay: float = 0.0, fail: set[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.fail = fail or set()
        self.down = False

    def __call__(self, items: Sequence[str]) -> list[str | BackendError]:
        self.calls.append(list(items))
        time.sleep(self.delay)
        if self.down:
            raise BackendError("test", "down")
        return [BackendError("test", i) if i in self.fail else i.upper() for i in items]


def test_an_idle_caller_sends_alone_and_at_once():
    backend = Backend()
    group = GroupCall("test", backend, max_items=10, wait_s=5)
    started = time.monotonic()
    assert group("a") == "A"
    assert group("b") == "B"
    assert backend.calls == [["a"], ["b"]]
    assert time.monotonic() - started < 0.1  # no batching window


def test_callers_arriving_during_a_call_go_together_in_the_next():
    backend = Backend(delay=0.2)
    group = GroupCall("test", backend, max_items=100, wait_s=5)
    results: dict[str, str] = {}

    def call(item: str) -> None:
        results[item] = group(item)

    first = threading.Thread(target=call, args=("first",))
    first.start()
    time.sleep(0.05)  # the first call is in flight
    others = [threading.Thread(target=call, args=(f"x{i}",)) for i in range(10)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join()
    assert results == {"first": "FIRST", **{f"x{i}": f"X{i}" for i in range(10)}}
    assert backend.calls[0] == ["first"]
    assert sorted(backend.calls[1]) == sorted(f"x{i}" for i in range(10))
    assert len(backend.calls) == 2


def test_a_batch_never_holds_two_items_with_the_same_key():
    backend = Backend(delay=0.1)
    group = GroupCall("test", backend, max_items=100, wait_s=5, keys=lambda item: (item[0],))
    threads = [threading.Thread(target=group, args=(w,)) for w in ("a1", "a2", "b1", "a3")]
    threads[0].start()
    time.sleep(0.03)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    for call in backend.calls:
        keys = [item[0] for item in call]
        assert len(keys) == len(set(keys)), call
    assert sorted(i for call in backend.calls for i in call) == ["a1", "a2", "a3", "b1"]


def test_a_batch_stays_within_its_size_and_a_large_item_goes_alone():
    backend = Backend(delay=0.1)
    group = GroupCall("test", backend, max_items=100, wait_s=5, size=len, max_size=10)
    items = ["first", "aaaa", "bbbb", "cccccccccccccccc", "dd", "ee"]
    threads = [threading.Thread(target=group, args=(i,)) for i in items]
    threads[0].start()
    time.sleep(0.03)  # the first call is in flight: the rest queue, in this order
    for t in threads[1:]:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert sorted(i for call in backend.calls for i in call) == sorted(items)
    for call in backend.calls:
        assert len(call) == 1 or sum(map(len, call)) <= 10, call
    assert ["cccccccccccccccc"] in backend.calls  # over the limit alone: sent, by itself


def test_a_failed_item_fails_alone_and_a_failed_call_fails_all():
    backend = Backend(fail={"bad"})
    group = GroupCall("test", backend, max_items=10, wait_s=5)
    with pytest.raises(BackendError):
        group("bad")
    assert group("good") == "GOOD"
    backend.down = True
    with pytest.raises(BackendError):
        group("any")
    backend.down = False
    assert group("again") == "AGAIN"  # a failure leaves no one stuck holding the lead


def test_deferred_items_ride_with_the_next_call():
    backend = Backend()
    group = GroupCall("test", backend, max_items=10, wait_s=5, flush_after_s=5)
    group.later("mark")
    assert group("create") == "CREATE"
    assert backend.calls == [["create", "mark"]]


def test_deferred_items_nobody_carries_are_flushed():
    backend = Backend()
    failures: list[BackendError] = []
    group = GroupCall("test", backend, max_items=10, wait_s=5, flush_after_s=0.05)
    backend.fail = {"bad-mark"}
    group.later("mark")
    group.later("bad-mark", failures.append)
    deadline = time.monotonic() + 2
    while len(backend.calls) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert backend.calls == [["mark", "bad-mark"]]
    assert [f.detail for f in failures] == ["bad-mark"]


def test_many_threads_all_get_their_own_result():
    backend = Backend(delay=0.01)
    group = GroupCall("test", backend, max_items=7, wait_s=5)
    results: dict[int, str] = {}
    lock = threading.Lock()

    def call(i: int) -> None:
        for j in range(20):
            item = f"t{i}-{j}"
            value = group(item)
            with lock:
                results[(i, j)] = value  # type: ignore[index]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 * 20
    assert all(v == f"T{i}-{j}" for (i, j), v in results.items())  # type: ignore[misc]
    assert all(len(c) <= 7 for c in backend.calls)
    assert len(backend.calls) < 16 * 20  # they did share calls


def test_the_flusher_is_woken_once_not_per_deferred_item():
    """At concurrency 1 every mark rides with the next call: the flusher must not wake for each."""
    backend = Backend()
    group = GroupCall("test", backend, max_items=10, wait_s=5, flush_after_s=0.05)
    wakes: list[int] = []
    real_set = group._wake.set

    def counted_set() -> None:
        wakes.append(1)
        real_set()

    group._wake.set = counted_set  # type: ignore[method-assign]
    for i in range(20):
        group.later(f"mark-{i}")
        assert group(f"create-{i}") == f"CREATE-{i}"
        time.sleep(0.01)
    assert len(wakes) == 1
    assert all(len(call) == 2 for call in backend.calls)  # each mark carried, none sent alone
    deadline = time.monotonic() + 2
    while group._armed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not group._armed  # quiet for a tick: back to an untimed wait
    group.later("late-mark")
    deadline = time.monotonic() + 2
    while len(backend.calls) < 21 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.calls[-1] == ["late-mark"]
    assert len(wakes) == 2
