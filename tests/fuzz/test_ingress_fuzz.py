"""The public edge under hostile input: 10,000 hypothesis cases against the real entry point.

The engine is the ``bench/fuzz`` package (``nox -s fuzz`` runs 100,000 cases with it);
here it runs against the session's emulators with a fixed seed, so a failure
reproduces. ``HOOKPRESS_FUZZ_SEED`` picks another seed.
"""

from __future__ import annotations

import os
import time

import pytest

from bench.fuzz import SOURCES, IngressFuzzer, genuine, run
from hookpress.signatures import SCHEMES

CASES = 10_000
BATCH = 2_000
SEED = int(os.environ.get("HOOKPRESS_FUZZ_SEED", "6"))
MAX_RSS_GROWTH_MIB = 64


@pytest.mark.parametrize("source", SOURCES)
def test_the_oracle_tells_a_genuine_signature_from_a_broken_one(source):
    """The safety check below is only as good as the oracle: it must not say yes to everything."""
    from hookpress.local.stack import generate_secret

    secret, other = generate_secret(source), generate_secret(source)
    body = b'{"id": "evt_1", "event_id": "Ev1"}'
    now = time.time()
    headers = {
        k.lower(): v
        for k, v in SCHEMES[source].sign(body, secret, now=now, delivery_id="d-1").items()
    }
    assert genuine(source, headers, body, [other, secret], now)
    assert not genuine(source, headers, body, [other], now)
    assert not genuine(source, headers, body + b" ", [secret], now)
    if SCHEMES[source].has_timestamp:
        assert not genuine(source, headers, body, [secret], now + 400)


@pytest.mark.slow
def test_ten_thousand_hostile_requests(emulators, tmp_path):
    """Never a 5xx, never an event stored or published without a valid signature, bounded RSS."""
    fuzzer = IngressFuzzer(emulators.project, tmp_path)
    try:
        report = run(fuzzer, CASES, BATCH, SEED)  # raises InvariantBroken with the case
    finally:
        fuzzer.close()
    assert report.cases >= CASES
    assert not [s for s in report.statuses if s >= 500]
    # The mixture really reached every part of the edge, the backends included.
    assert report.statuses[401] > CASES // 4
    assert all(report.statuses[s] for s in (400, 404, 405, 413, 415))
    assert report.new_events > 100
    assert report.pristine > 50
    audit = report.audit
    # every object is an accepted event's, or a GitHub/Shopify copy's own upload (kept:
    # the ingress never deletes) whose body's marker names an accepted event
    assert audit["gcs_objects"] - audit["copy_objects"] == audit["firestore_records"]
    assert audit["firestore_records"] == audit["accepted_keys"]
    assert report.rss_growth_mib < MAX_RSS_GROWTH_MIB, report.rss_mib
