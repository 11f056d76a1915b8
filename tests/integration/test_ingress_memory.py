"""What one request of the largest accepted body holds: the figure the Pulumi program's
memory rule counts on (``hookpress.config_rules.INGRESS_BYTES_PER_BODY_BYTE``).

An instance over its memory limit is terminated with every request on it, so
``ingressConcurrency`` requests of ``maxBodyBytes`` each must fit in
``ingressMemory``. The worst body for the parser is one of many short values
(each a Python object of its own); the peak here is every allocation the
request makes through the real entry point, the test client's copy included.
"""

from __future__ import annotations

import gc
import json
import tracemalloc

from hookpress import config_rules as rules
from tests.integration.conftest import Backends, signed


def largest_body(limit: int) -> bytes:
    """A provider-like event of many short values, just under ``limit`` bytes."""
    items: list[dict[str, object]] = []
    event = {"id": "evt_memory_largest", "type": "invoice.updated", "data": {"lines": items}}
    row = {"id": "li_000000", "amount": 1250, "paid": True, "note": "a short text", "n": [1, 2]}
    step = len(json.dumps(row)) + 2  # and the ", " between two rows
    items.extend({**row, "id": f"li_{i:06d}"} for i in range((limit - 200) // step))
    body = json.dumps(event).encode()
    assert limit - 400 < len(body) <= limit
    return body


def test_a_request_of_the_largest_body_holds_at_most_the_rules_share(
    client, backends: Backends
) -> None:
    body = largest_body(rules.MAX_BODY_BYTES.default)
    headers = signed("stripe", body)
    gc.collect()
    tracemalloc.start()
    try:
        resp = client.post("/stripe", content=body, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status_code == 202, resp.content
    per_byte = peak / len(body)
    assert per_byte <= rules.INGRESS_BYTES_PER_BODY_BYTE, f"{per_byte:.2f} bytes held per body byte"
    # and it is a measure, not a bound that anything passes: parsing alone is several times
    assert per_byte > 3, per_byte
