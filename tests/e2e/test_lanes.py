"""Fair lanes, small: a bulk flood leaves the high lane delivering (bench/lanes.py, full size
in ``nox -s chaos -- --case lanes``). With one lane the same flood delays high events by
minutes (bench/RESULTS.md); with lanes their p95 stays within a few times its value alone.
The bound is loose on purpose: this is a regression guard against losing the lanes (the
one-lane control is over 100x at full size), run on a shared two-core machine where
WordPress, the emulators and every lane's deliver compete for the same CPU, with the
flood unpaced (3-5x at full size). The high events go at 2/s, within the high lane's
share (bench/RESULTS.md). Issue 13's measure (p95 within 2x) is taken by the chaos case;
bench/RESULTS.md reports it."""

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
    assert case["p95_ratio"] <= 8, case
