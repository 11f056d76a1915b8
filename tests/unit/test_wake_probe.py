"""bench/wake_probe.py: the machine's cost of waking a thread, as each bench run records it."""

from __future__ import annotations

import os

from bench.wake_probe import probe, sentence


def test_each_round_trip_on_one_core_puts_both_threads_on_it() -> None:
    # On one core each blocking read hands the core to the other thread: two times
    # scheduled per round trip at least, and nothing runs without being counted.
    mine = os.sched_getaffinity(0)
    core = min(mine)
    row = probe(0.0, (core, core), n=200)
    assert row["cores"] == 1
    assert row["scheduled"] >= 1.9
    assert row["cpu_us"] > 0
    assert row["p50_us"] > 0
    assert os.sched_getaffinity(0) == mine  # the caller's CPUs given back


def test_the_sentence_names_the_one_core_figures_and_the_cross_core_one_if_measured() -> None:
    rows = [
        {"cores": 1, "gap_ms": 0.0, "cpu_us": 8.1},
        {"cores": 1, "gap_ms": 5.0, "cpu_us": 101.9},
    ]
    assert "8.1 µs of CPU back to back on one core, 101.9 µs after a 5 ms sleep (" in sentence(rows)
    rows.append({"cores": 2, "gap_ms": 0.0, "cpu_us": 40.4})
    assert "40.4 µs back to back across two cores" in sentence(rows)
    assert sentence([]) == ""
