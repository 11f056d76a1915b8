"""What a thread wake-up costs on this machine, with nothing else running: no server, no emulator.

Two threads pass one byte back and forth over a pair of pipes, 3,000 round trips, either
back to back or with the sender sleeping ``gap`` first (a request at concurrency 1 sleeps
while each backend answers), both threads on one core or each on its own (left to
itself the scheduler picks either, run to run). For each it prints the round trip's p50
and what the two threads' ``/proc`` schedstat says per round trip: CPU, time runnable
but waiting for a core, and times put on one. ``python -m bench.wake_probe``
(bench/RESULTS.md, "Where it stands"; results/wake-probe.json). ``nox -s bench`` takes it
(1,000 round trips a row) before anything of its own starts, into bench.json's ``machine``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence

from bench._load import Schedstat

ROUND_TRIPS = 3_000
GAPS_S = (0.0, 0.001, 0.005)


def _of(tid: int) -> Schedstat:
    return Schedstat.read(f"/proc/self/task/{tid}/schedstat")


def probe(gap_s: float, cores: tuple[int, int], n: int = ROUND_TRIPS) -> dict[str, float]:
    """``n`` round trips with ``gap_s`` of sleep before each, the sender on ``cores[0]`` and
    the echo on ``cores[1]``: p50 µs, and µs of CPU and of waiting for a core, and times
    scheduled, per round trip (both threads summed)."""
    ping_r, ping_w = os.pipe()
    pong_r, pong_w = os.pipe()
    ready = threading.Event()
    echo_tid: list[int] = []

    def echo() -> None:
        try:
            os.sched_setaffinity(0, {cores[1]})
            echo_tid.append(threading.get_native_id())
        finally:
            ready.set()  # with no tid if the CPU was refused: the caller raises
        while echo_tid and os.read(ping_r, 1) == b"x":
            os.write(pong_w, b"x")

    mine = os.sched_getaffinity(0)  # given back whatever happens: the bench's servers inherit it
    os.sched_setaffinity(0, {cores[0]})
    thread = threading.Thread(target=echo)
    try:
        thread.start()
        ready.wait()
        if not echo_tid:
            raise RuntimeError(f"the echo thread could not run on CPU {cores[1]}")
        me = threading.get_native_id()
        before = _of(me) + _of(echo_tid[0])
        latencies = []
        for _ in range(n):
            if gap_s:
                time.sleep(gap_s)
            started = time.perf_counter()
            os.write(ping_w, b"x")
            os.read(pong_r, 1)
            latencies.append(time.perf_counter() - started)
        spent = _of(me) + _of(echo_tid[0]) - before
    finally:
        os.sched_setaffinity(0, mine)
        os.write(ping_w, b"q")
        if thread.is_alive():
            thread.join()
        for fd in (ping_r, ping_w, pong_r, pong_w):
            os.close(fd)
    latencies.sort()
    return {
        "cores": len(set(cores)),
        "gap_ms": gap_s * 1000,
        "p50_us": round(latencies[n // 2] * 1e6, 1),
        "cpu_us": round(spent.ran_ns / n / 1000, 1),
        "waiting_us": round(spent.queued_ns / n / 1000, 1),
        "scheduled": round(spent.scheduled / n, 2),
    }


def measure(n: int = ROUND_TRIPS) -> list[dict[str, float]]:
    """Every gap of :data:`GAPS_S`, on one core and (with two or more) across two."""
    cpus = sorted(os.sched_getaffinity(0))
    placements = [(cpus[0], cpus[0])] + ([(cpus[0], cpus[1])] if len(cpus) > 1 else [])
    return [probe(gap, cores, n) for cores in placements for gap in GAPS_S]


def sentence(rows: Sequence[Mapping[str, float]]) -> str:
    """What :func:`measure` found, in words for bench.md ('' without its one-core rows)."""
    cpu = {(row["cores"], row["gap_ms"]): row["cpu_us"] for row in rows}
    if (1, 0.0) not in cpu or (1, 5.0) not in cpu:
        return ""
    across = f", {cpu[2, 0.0]} µs back to back across two cores" if (2, 0.0) in cpu else ""
    return (
        " Before the run, with nothing else of ours running, a round trip between two threads "
        f"cost {cpu[1, 0.0]} µs of CPU back to back on one core, {cpu[1, 5.0]} µs after a "
        f"5 ms sleep{across} (`python -m bench.wake_probe`)."
    )


def main() -> None:
    for row in measure():
        print(json.dumps(row))


if __name__ == "__main__":
    main()
