"""The chaos run's fair-lanes case: a bulk flood must leave high sources delivering.

On the local stack with two sources, ``lane-bulk`` (lane ``bulk``) and
``lane-high`` (lane ``high``), each lane its own push subscription and
deliver process with its share of the WordPress cap (``hookpress.lanes``);
the router applies the lanes' filters, which the emulator ignores
(``hookpress/local/lanerouter.py``):

1. **alone**: after 10 events per lane to warm the pipeline, 50 high events,
   paced at 10 per second, nothing else;
2. **flood**: 2,000 bulk events sent by 16 threads as fast as the ingress
   takes them and, once the flood is under way, the same number of high
   events at the same pace (new ids).

Delivery latency of an event = the record's ``delivered_at`` − its
``received_at`` (both written by this machine's clock). The figure is the
ratio of the high events' p95 during the flood to their p95 alone (target
≤ 2). The same flood with every source on one lane is run too, as the
control: it shows what the lanes buy.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench._common import percentile
from hookpress.events import event_key
from hookpress.local.emulators import Emulators
from hookpress.local.stack import LocalStack, StackOptions
from hookpress.local.wordpress import WordPressServer
from hookpress.ops.sending import sign_request

__all__ = ["markdown", "run_case", "run_lanes"]

HIGH, BULK = "lane-high", "lane-bulk"


def _body(run: str, source: str, i: int) -> tuple[bytes, str]:
    external = f"{run}-{source}-{i:05d}"
    payload = {
        "id": external,
        "status": "completed",
        "summary": f"lanes {source} {i}",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return json.dumps(payload).encode(), event_key(source, external)


class _Sender:
    def __init__(self, stack: LocalStack) -> None:
        if stack.ingress is None:
            raise RuntimeError("the stack is not running")
        self.url = stack.ingress.url
        self.secrets = {n: v[0] for n, v in stack.signing_secrets.items()}
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=40))

    def send(self, source: str, body: bytes) -> int:
        for attempt in range(8):
            request = sign_request(
                source=source,
                scheme="hmac-timestamp",
                secret=self.secrets[source],
                body=body,
                now=time.time(),
                url=f"{self.url}/{source}",
            )
            try:
                status = self.client.post(
                    f"{self.url}/{source}", content=body, headers=request.headers
                ).status_code
            except httpx.TransportError:
                status = 0
            if status in (200, 202):
                return status
            time.sleep(min(2.0, 0.1 * 2**attempt))
        return status


def _records(project: str, keys: list[str], deadline_s: float) -> list[dict[str, Any]]:
    from google.cloud import firestore

    db = firestore.Client(project=project)
    col = db.collection("events")
    end = time.monotonic() + deadline_s
    while True:
        snaps = [s.to_dict() or {} for s in db.get_all([col.document(k) for k in keys])]
        done = [s for s in snaps if s.get("status") == "delivered"]
        if len(done) == len(keys) or time.monotonic() > end:
            return done


def _latencies(project: str, keys: list[str], deadline_s: float) -> list[float]:
    done = _records(project, keys, deadline_s)
    return [(s["delivered_at"] - s["received_at"]).total_seconds() for s in done]


def _paced(sender: _Sender, source: str, run: str, n: int, rate: float) -> list[str]:
    keys = []
    for i in range(n):
        body, key = _body(run, source, i)
        keys.append(key)
        sender.send(source, body)
        time.sleep(1 / rate)
    return keys


def run_case(
    workdir: Path,
    *,
    lanes: bool,
    high_events: int,
    bulk_events: int,
    rate: float,
    emulators: Emulators,
    wordpress: WordPressServer,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One stack, high events alone then during a bulk flood; their latencies."""
    run = secrets.token_hex(3)
    high_lane = "high" if lanes else "normal"
    bulk_lane = "bulk" if lanes else "normal"
    options = StackOptions(
        project=f"hookpress-lanes-{run}",
        sources={
            HIGH: {"provider": "hmac-timestamp", "lane": high_lane},
            BULK: {"provider": "hmac-timestamp", "lane": bulk_lane},
        },
        wp_cap=8,
        threads=8,
        breaker_threshold=1000,
    )
    stack = LocalStack(workdir / run, options, emulators=emulators, wordpress=wordpress).start()
    try:
        say(f"lanes={lanes}: deliver threads per lane {stack.lane_shares()}")
        sender = _Sender(stack)
        # Warm every lane first (deliver processes, WordPress, connections), so "alone"
        # measures a warm pipeline, as the flood phase does.
        warm = _paced(sender, HIGH, f"{run}-warm", 10, rate) + _paced(
            sender, BULK, f"{run}-warm", 10, rate
        )
        _latencies(options.project, warm, 120)
        alone_keys = _paced(sender, HIGH, f"{run}-alone", high_events, rate)
        alone = _latencies(options.project, alone_keys, 120)
        say(f"lanes={lanes}: alone p95 {percentile(alone, 95):.3f} s")

        flood_started = threading.Event()
        flood_keys: list[str] = []

        def flood() -> None:
            with ThreadPoolExecutor(16) as pool:
                for i in range(bulk_events):
                    body, key = _body(run, BULK, i)
                    flood_keys.append(key)
                    pool.submit(sender.send, BULK, body)
                    if i == bulk_events // 10:
                        flood_started.set()

        t0 = time.monotonic()
        flooder = threading.Thread(target=flood)
        flooder.start()
        flood_started.wait(120)
        during_keys = _paced(sender, HIGH, f"{run}-flood", high_events, rate)
        during = _latencies(options.project, during_keys, 600)
        flooder.join()
        say(f"lanes={lanes}: flood p95 {percentile(during, 95):.3f} s")
        bulk = _latencies(options.project, flood_keys, 900)
        drained_s = time.monotonic() - t0
        return {
            "lanes": lanes,
            "shares": stack.lane_shares(),
            "routed": dict(stack.router.counts) if stack.router is not None else {},
            "high_alone": _stats(alone, high_events),
            "high_during_flood": _stats(during, high_events),
            "bulk": _stats(bulk, bulk_events),
            "flood_drained_s": round(drained_s, 1),
            "p95_ratio": round(percentile(during, 95) / max(percentile(alone, 95), 1e-6), 2)
            if alone and during
            else None,
        }
    finally:
        stack.stop()


def _stats(values: list[float], expected: int) -> dict[str, Any]:
    if not values:
        return {"delivered": 0, "of": expected}
    return {
        "delivered": len(values),
        "of": expected,
        "p50_s": round(percentile(values, 50), 3),
        "p95_s": round(percentile(values, 95), 3),
        "max_s": round(max(values), 3),
    }


def run_lanes(
    workdir: Path,
    *,
    high_events: int = 50,
    bulk_events: int = 2000,
    rate: float = 10.0,
    control: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the case with lanes (and, with ``control``, on one lane); the figures."""
    emulators = Emulators(workdir / "emulators", "hookpress-lanes").start()
    wordpress = WordPressServer(workdir / "wordpress")
    try:
        wordpress.start()
        result = {
            "high_events": high_events,
            "bulk_events": bulk_events,
            "rate_per_s": rate,
            "with_lanes": run_case(
                workdir, lanes=True, high_events=high_events, bulk_events=bulk_events,
                rate=rate, emulators=emulators, wordpress=wordpress, say=say,
            ),
        }  # fmt: skip
        if control:
            result["one_lane"] = run_case(
                workdir, lanes=False, high_events=high_events, bulk_events=bulk_events,
                rate=rate, emulators=emulators, wordpress=wordpress, say=say,
            )  # fmt: skip
        ratio = result["with_lanes"]["p95_ratio"]
        result["target"] = "high-lane p95 during the flood <= 2x alone"
        result["met"] = ratio is not None and ratio <= 2.0
        return result
    finally:
        wordpress.stop()
        emulators.stop()


def markdown(result: dict[str, Any], command: str) -> str:
    """The case as a Markdown section."""
    lines = [
        "# Fair lanes: a bulk flood against high sources",
        "",
        f"`{command}` — {result['high_events']} high events at {result['rate_per_s']}/s, "
        f"alone and again during a flood of {result['bulk_events']} bulk events.",
        "",
        "| run | deliver threads per lane | high p50 alone | high p95 alone | "
        "high p50 in flood | high p95 in flood | p95 ratio | bulk drained |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("with_lanes", "one_lane"):
        case = result.get(name)
        if not case:
            continue
        alone, during = case["high_alone"], case["high_during_flood"]
        lines.append(
            f"| {name.replace('_', ' ')} | {case['shares']} | {alone.get('p50_s')} s | "
            f"{alone.get('p95_s')} s | {during.get('p50_s')} s | {during.get('p95_s')} s | "
            f"{case['p95_ratio']}× | {case['bulk']['delivered']}/{case['bulk']['of']} "
            f"in {case['flood_drained_s']} s |"
        )
    verdict = "met" if result["met"] else "MISSED"
    lines += ["", f"Target: {result['target']}: **{verdict}**.", ""]
    return "\n".join(lines)
