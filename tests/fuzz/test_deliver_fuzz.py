"""Poison payloads never wedge delivery: 200 hypothesis cases into a real WordPress.

The engine is ``bench/fuzz/deliver.py``'s :class:`DeliverFuzzer` (``nox -s fuzz`` runs
2,000 cases with it): signed, hostile payloads through the real ingress and
deliver entry points, the session's emulators, and a throwaway WordPress with
the plugin. A fixed seed, so a failure reproduces; ``HOOKPRESS_FUZZ_SEED``
picks another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.fuzz import DELIVER_SOURCES, DeliverCase, DeliverFuzzer, InvariantBroken, run_deliver
from hookpress.local.emulators import Emulators
from hookpress.local.wordpress import WordPressServer, WordPressSite
from tests.local_http import ScriptedServer

CASES = 200
BATCH = 50
SEED = int(os.environ.get("HOOKPRESS_FUZZ_SEED", "6"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressSite]:
    with WordPressServer(tmp_path_factory.mktemp("wordpress")) as server:
        yield server.site


@pytest.fixture
def fuzzer(emulators: Emulators, site: WordPressSite, tmp_path: Path) -> Iterator[DeliverFuzzer]:
    fuzzer = DeliverFuzzer(emulators.project, tmp_path, site)
    yield fuzzer
    fuzzer.close()


def case(**payload: Any) -> DeliverCase:
    return DeliverCase("stripe", json.dumps(payload).encode(), ["hand-made"], None)


def test_the_checks_see_a_5xx(fuzzer: DeliverFuzzer):
    """The invariants are only as good as their checks: a WordPress answering 503 breaks them."""
    from hookpress.deliver import WordPressClient

    unavailable = ScriptedServer(lambda seen, status: (status, {}, b"down"), default_status=503)
    try:
        fuzzer.runtime.deliverer.wordpress = WordPressClient(
            unavailable.url() + "/wp-json", "ingest", connect_timeout_s=1, read_timeout_s=1
        )
        with pytest.raises(InvariantBroken, match="deliver answered 503"):
            fuzzer.check(case(id="fz-503", type="x"))
    finally:
        unavailable.close()


def test_the_checks_see_a_probe_slot_left_taken(fuzzer: DeliverFuzzer):
    fuzzer.force_half_open()
    assert fuzzer.breaker.allow()  # as a buggy path would: the slot taken, never given back
    with pytest.raises(InvariantBroken, match="probe slot is held"):
        fuzzer.check(case(id="fz-poison", type="x", created=1e20))


@pytest.mark.slow
def test_hostile_payloads_never_wedge_delivery(fuzzer: DeliverFuzzer):
    """Never a 5xx, every event delivered or failed, the breaker never stuck, WordPress fine."""
    report = run_deliver(fuzzer, CASES, BATCH, SEED)  # raises InvariantBroken with the case
    data = report.as_dict()
    assert (data["deliver_5xx"], data["non_final"]) == (0, 0)
    assert report.cases >= CASES
    assert report.batches == report.half_open_batches == report.sentinels_delivered >= 4
    # the mixture reached both outcomes and every kind of hostility
    assert report.outcomes["delivered"] > CASES // 2
    assert report.failed_reasons["unusable_payload:occurred_at_out_of_range"] > 0
    kinds = ("time", "number", "string", "wrong_type", "deep", "huge", "nested", "no_id")
    assert all(report.kinds[k] for k in kinds), report.kinds
    # every provider's default transform met hostile payloads (Twilio's as a form)
    assert set(report.sources) == set(DELIVER_SOURCES), report.sources
    assert len(DELIVER_SOURCES) == 15
