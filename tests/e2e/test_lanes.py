"""Fair lanes, small: a bulk flood leaves the high lane delivering (bench/lanes.py, full size
in ``nox -s chaos -- --case lanes``). With one lane the same flood delays high events by
minutes (bench/RESULTS.md): they wait in the same backlog as the bulk events, so their
latency is the bulk events' latency. With lanes they overtake the flood: their p95 stays
below the bulk events' median. That comparison is made within one run, so a loaded
machine slows both sides alike; a ratio to the high events' p95 alone (0.1-0.2 s once
warm) is printed but not bounded here, since a neighbour's burst moves it by several
times on a shared two-core machine. The high events go at 2/s, within the high lane's
share (bench/RESULTS.md). Issue 13's measure (p95 within 2x alone) is taken by the chaos
case; bench/RESULTS.md reports it."""

from __future__ import annotations

import pytest

from bench.lanes import run_case


@pytest.mark.slow
def test_a_bulk_flood_leaves_high_sources_delivering(emulators, wordpress_server, tmp_path):
    case = run_case(
        tmp_path,
        lanes=True,
        high_events=20,
        bulk_events=400,
        rate=2.0,
        emulators=emulators,
        wordpress=wordpress_server,
    )
    assert case["shares"] == {"high": 2, "normal": 4, "bulk": 2}
    assert case["high_alone"]["delivered"] == 20
    assert case["high_during_flood"]["delivered"] == 20
    assert case["bulk"]["delivered"] == 400, "nothing lost in the bulk lane"
    # The ingress published each message to one lane's topic, by the lanes' own filters;
    # nothing reached the router (it serves publishes made straight to `events`).
    assert case["routed"]["unroutable"] == 0
    print(case)
    high, bulk = case["high_during_flood"], case["bulk"]
    assert high["p95_s"] < bulk["p50_s"], f"the high events did not overtake the flood: {case}"
