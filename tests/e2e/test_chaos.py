"""The chaos run, small: 150 events through faults, kills and duplicates; nothing lost or doubled.

The engine is ``bench/chaos.py`` (``nox -s chaos`` runs 2,000 events with it).
Here it runs on the session's emulators and WordPress, in a project of its
own, so the other end-to-end tests' subscriptions and posts do not interfere.
"""

from __future__ import annotations

import pytest

from bench.chaos import ChaosOptions, run_chaos


@pytest.mark.slow
def test_nothing_lost_nothing_applied_twice_under_faults_and_kills(
    emulators, wordpress_server, tmp_path
):
    result = run_chaos(
        ChaosOptions(events=150, drain_timeout_s=300),
        tmp_path,
        emulators=emulators,
        wordpress=wordpress_server,
    )
    inv = result.invariants
    assert inv["lost"] == 0, result.examples["lost"]
    assert inv["duplicate_effects"] == 0, result.examples["duplicate_effects"]
    assert inv["unexpected_posts"] == 0, result.examples["unexpected_posts"]
    assert inv["gcs_sha256_mismatch"] == inv["gcs_object_missing"] == 0, result.examples["gcs"]
    assert result.broken == [], (result.invariants, result.examples)
    # The faults really happened: otherwise the zeros above prove nothing.
    assert result.sent["503_retried"] > 0
    assert result.sent["200_duplicate"] >= 15
    assert sum(result.faults["wordpress_faults_injected"].values()) > 0
    assert len(result.faults["deliver_kills_at_s"]) == 2
    assert result.storage["objects_checked"] == result.sent["accepted_events"] == 150
    assert result.records["final"] == {"delivered": 150}
    assert result.wordpress["posts"] == 150
