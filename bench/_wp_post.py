"""The floor of deliver's CPU: a bare httpx POST of each record to the same WordPress.

``python -m bench._wp_post < job.json`` with ``{"url", "user", "password",
"concurrency", "records": [...]}`` POSTs every record (JSON, Basic auth,
``Idempotency-Key`` = its external id) from ``concurrency`` threads through
one pooled ``httpx.Client``, and prints ``{"cpu_s", "seconds", "statuses"}``:
the CPU this process spent on the POSTs alone (its start-up, imports and a
warm-up POST are not counted). A process of its own, so nothing else the
benchmark does is counted with it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    """Read the job on stdin, POST, print the figures."""
    job: dict[str, Any] = json.load(sys.stdin)
    records: list[dict[str, Any]] = job["records"]
    with httpx.Client(auth=(job["user"], job["password"]), timeout=60) as client:

        def post(record: dict[str, Any]) -> int:
            headers = {"Idempotency-Key": record["external_id"]}
            return client.post(job["url"], json=record, headers=headers).status_code

        with ThreadPoolExecutor(int(job["concurrency"])) as pool:
            post(records[0])  # connect and warm up: not counted
            cpu, started = _cpu(), time.perf_counter()
            codes = list(pool.map(post, records[1:]))
            seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    statuses = {str(c): codes.count(c) for c in sorted(set(codes))}
    print(json.dumps({"cpu_s": cpu, "seconds": seconds, "posts": len(codes), "statuses": statuses}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
