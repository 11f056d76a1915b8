"""The chaos run's fair-lanes case: a bulk flood must leave high sources delivering.

On the local stack with two sources, ``lane-bulk`` (lane ``bulk``) and
``lane-high`` (lane ``high``), each lane its own push subscription and
deliver process with its share of the WordPress cap (``hookpress.lanes``);
the ingress publishes each message to its lane's topic by the lanes' filters,
which the emulator ignores (``hookpress/local/routed_ingress.py``). Deliver
posts straight to WordPress, as in the cloud (no fault proxy: none is injected).

1. **alone**: after 10 events per lane to warm the pipeline, 50 high events
   on a fixed schedule (2 per second by default: each sent from a thread of
   its own, so a slow answer never delays the next), nothing else;
2. **flood**: 2,000 bulk events sent by 16 threads as fast as the ingress
   answers them and, once the flood is under way, the same number of high
   events on the same schedule (new ids).

Delivery latency of an event = the record's ``delivered_at`` − its
``received_at`` (both written by this machine's clock). The figure is the
ratio of the high events' p95 during the flood to their p95 alone (target
≤ 2). Each high event's time is also cut into stages, and each process's CPU
share is read meanwhile (``bench/_lanestages.py``), and so is the bulk lane's
backlog (bulk events received and not yet delivered) when each high event
arrived.

Three runs: the flood unpaced (the two cores' ingest limit: the emulators'
work for ~80–100 events/s competes with WordPress for the CPU, which in the cloud
it never does); **the measure**, the flood paced at 60/s, faster than the bulk
lane delivers (about 39/s here in run 24, after the ingress's move to ASGI mode;
27/s before, when the pace was 40/s: in run 24 a 40/s flood left at most 83 bulk
events waiting, under :data:`BACKLOG_MIN`), so its backlog grows the whole time the
high events are sent, as a flood's does, while the machine still has CPU for the
ingest; and the control, every source on one lane with the same paced flood,
which shows what the lanes buy. The measure counts only when the backlog did
build (:data:`BACKLOG_MIN` events waiting when the last high event arrived).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench._common import percentile
from bench._lanestages import CpuWindow, stage_breakdown
from hookpress.events import event_key
from hookpress.local.emulators import Emulators
from hookpress.local.stack import LocalStack, StackOptions
from hookpress.local.wordpress import WordPressServer
from hookpress.ops.sending import sign_request

__all__ = ["markdown", "run_case", "run_lanes"]

HIGH, BULK = "lane-high", "lane-bulk"

# The measured run's flood must have outrun the bulk lane: at least this many bulk
# events waiting when the last high event arrived (50 times bulk's two in flight).
BACKLOG_MIN = 100


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
        self.sent: dict[str, tuple[float, float]] = {}

    def send(self, source: str, body: bytes, key: str | None = None) -> int:
        """POST until accepted (8 tries); with ``key``, keep when it began and was answered."""
        began = time.time()
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
                if key is not None:
                    self.sent[key] = (began, time.time())
                return status
            time.sleep(min(2.0, 0.1 * 2**attempt))
        return status


def _records(project: str, keys: list[str], deadline_s: float) -> list[dict[str, Any]]:
    """The delivered records of ``keys`` (with their ``event_key``), once all are, or at the
    deadline. Polled every quarter second: a tight loop would load the Firestore emulator
    the pipeline itself uses (the latencies come from the records' own timestamps)."""
    from google.cloud import firestore

    db = firestore.Client(project=project)
    col = db.collection("events")
    end = time.monotonic() + deadline_s
    while True:
        snaps = [(s.id, s.to_dict() or {}) for s in db.get_all([col.document(k) for k in keys])]
        done = [{**d, "event_key": k} for k, d in snaps if d.get("status") == "delivered"]
        if len(done) == len(keys) or time.monotonic() > end:
            return done
        time.sleep(0.25)


def _latency(record: dict[str, Any]) -> float:
    return float((record["delivered_at"] - record["received_at"]).total_seconds())


def backlog_at(bulk: list[dict[str, Any]], instants: list[datetime]) -> list[int]:
    """How many of the ``bulk`` records had been received and not yet delivered at each
    of ``instants`` (the records' own ``received_at`` and ``delivered_at``)."""
    spans = [(r["received_at"], r["delivered_at"]) for r in bulk]
    return [sum(1 for got, done in spans if got <= t < done) for t in instants]


def _paced(sender: _Sender, source: str, run: str, n: int, rate: float) -> tuple[list[str], float]:
    """Send ``n`` events on a fixed schedule of ``rate`` per second (each from a thread of
    its own, so a slow answer does not delay the next); the keys and the rate achieved."""
    keys = []
    with ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        for i in range(n):
            body, key = _body(run, source, i)
            keys.append(key)
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            pool.submit(sender.send, source, body, key)
        spread = time.monotonic() - started  # first send to last (not their answers)
    return keys, round((n - 1) / spread, 2) if spread > 0 else rate


def run_case(
    workdir: Path,
    *,
    lanes: bool,
    high_events: int,
    bulk_events: int,
    rate: float,
    emulators: Emulators,
    wordpress: WordPressServer,
    flood_rate: float | None = None,
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
        wp_through_proxy=False,  # no faults here; in the cloud deliver posts straight to WordPress
    )
    stack = LocalStack(workdir / run, options, emulators=emulators, wordpress=wordpress).start()
    try:
        say(f"lanes={lanes}: deliver instances per lane {stack.deliver_instances()}")
        sender = _Sender(stack)
        ports = {_port(p.url): lane for lane, p in stack.lane_delivers.items()}
        if stack.deliver is not None:
            ports[_port(stack.deliver.url)] = "normal"
        cpu = CpuWindow(ports)
        # Warm every lane first (deliver processes, WordPress, connections), so "alone"
        # measures a warm pipeline, as the flood phase does.
        warm = _paced(sender, HIGH, f"{run}-warm", 10, rate)[0]
        warm += _paced(sender, BULK, f"{run}-warm", 10, rate)[0]
        _records(options.project, warm, 120)
        cpu.start()
        alone_keys, alone_rate = _paced(sender, HIGH, f"{run}-alone", high_events, rate)
        alone_records = _records(options.project, alone_keys, 120)
        alone_cpu = cpu.stop()
        alone = [_latency(r) for r in alone_records]
        say(f"lanes={lanes}: alone p95 {percentile(alone, 95):.3f} s")

        flood_started = threading.Event()
        flood_keys: list[str] = []
        flood_sent: list[float] = []

        def flood() -> None:
            with ThreadPoolExecutor(16) as pool:
                for i in range(bulk_events):
                    body, key = _body(run, BULK, i)
                    flood_keys.append(key)
                    if flood_rate:
                        time.sleep(max(0.0, t0 + i / flood_rate - time.monotonic()))
                    pool.submit(sender.send, BULK, body)
                    if i == bulk_events // 10:
                        flood_started.set()
            flood_sent.append(time.monotonic() - t0)  # the last one answered

        t0 = time.monotonic()
        flooder = threading.Thread(target=flood)
        flooder.start()
        flood_started.wait(120)
        cpu.start()
        during_keys, during_rate = _paced(sender, HIGH, f"{run}-flood", high_events, rate)
        during_records = _records(options.project, during_keys, 600)
        flood_cpu = cpu.stop()
        during = [_latency(r) for r in during_records]
        flooder.join()
        say(f"lanes={lanes}: flood p95 {percentile(during, 95):.3f} s")
        bulk_records = _records(options.project, flood_keys, 900)
        bulk = [_latency(r) for r in bulk_records]
        drained_s = time.monotonic() - t0
        arrivals = sorted(r["received_at"] for r in during_records)
        backlog = backlog_at(bulk_records, arrivals)
        logs = stack.workdir / "logs"
        return {
            "lanes": lanes,
            "shares": stack.lane_shares(),
            "routed": dict(stack.router.counts) if stack.router is not None else {},
            "high_rate_per_s": {"alone": alone_rate, "during_flood": during_rate},
            "flood_rate_per_s": flood_rate,  # None: as fast as 16 senders get answers
            "flood_sent_s": round(flood_sent[0], 1) if flood_sent else None,
            "high_alone": _stats(alone, high_events),
            "high_during_flood": _stats(during, high_events),
            "bulk": _stats(bulk, bulk_events),
            "flood_drained_s": round(drained_s, 1),
            # bulk events waiting when the first, the median and the last high event arrived
            "bulk_backlog": {
                "first": backlog[0] if backlog else None,
                "median": sorted(backlog)[len(backlog) // 2] if backlog else None,
                "last": backlog[-1] if backlog else None,
            },
            "p95_ratio": round(percentile(during, 95) / max(percentile(alone, 95), 1e-6), 2)
            if alone and during
            else None,
            "stages": {
                "alone": stage_breakdown(logs, high_lane, alone_records, sender.sent),
                "during_flood": stage_breakdown(logs, high_lane, during_records, sender.sent),
            },
            "cpu_cores": {"alone": alone_cpu, "during_flood": flood_cpu},
        }
    finally:
        stack.stop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


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


CASES = ("with_lanes", "with_lanes_paced_flood", "one_lane")
MEASURE = "with_lanes_paced_flood"


def run_lanes(
    workdir: Path,
    *,
    high_events: int = 50,
    bulk_events: int = 2000,
    rate: float = 2.0,
    paced_flood_rate: float = 60.0,
    control: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the case with lanes and the flood unpaced, again with the flood paced at
    ``paced_flood_rate`` (the measure), and, with ``control``, on one lane with the same
    paced flood; the figures."""
    wordpress = WordPressServer(workdir / "wordpress")
    common: dict[str, Any] = {
        "high_events": high_events,
        "bulk_events": bulk_events,
        "rate": rate,
        "wordpress": wordpress,
        "say": say,
    }

    def case(name: str, **kwargs: Any) -> dict[str, Any]:
        # Fresh emulators for each run: a run must not inherit the last one's 2,000-odd
        # documents, messages and objects (when fake-gcs-server ran on its memory backend,
        # a bucket was a list it scanned on every read, so the later runs paid for the
        # earlier ones; see hookpress.local.emulators).
        with Emulators(workdir / f"emulators-{name}", "hookpress-lanes") as emulators:
            return run_case(workdir, emulators=emulators, **common, **kwargs)

    try:
        wordpress.start()
        result: dict[str, Any] = {
            "high_events": high_events,
            "bulk_events": bulk_events,
            "rate_per_s": rate,
            "with_lanes": case("with_lanes", lanes=True),
        }
        result[MEASURE] = case(MEASURE, lanes=True, flood_rate=paced_flood_rate)
        if control:
            result["one_lane"] = case("one_lane", lanes=False, flood_rate=paced_flood_rate)
        # The measure: the flood faster than bulk delivers, not faster than two cores
        # can ingest (module docstring; bench/RESULTS.md, fair lanes).
        ratio = result[MEASURE]["p95_ratio"]
        waiting = result[MEASURE]["bulk_backlog"]["last"] or 0
        result["measure"] = MEASURE
        result["target"] = (
            f"high-lane p95 during the flood <= 2x alone, with >= {BACKLOG_MIN} bulk events "
            "waiting when the last high event arrived"
        )
        result["met"] = ratio is not None and ratio <= 2.0 and waiting >= BACKLOG_MIN
        return result
    finally:
        wordpress.stop()


def _flood(case: dict[str, Any]) -> str:
    rate = case.get("flood_rate_per_s")
    sent = case.get("flood_sent_s")
    pace = f"paced at {rate:g}/s" if rate else "16 senders, unpaced"
    return f"{pace}, sent in {sent} s" if sent else pace


def _backlog(case: dict[str, Any]) -> str:
    waiting = case.get("bulk_backlog") or {}
    return " / ".join(str(waiting.get(k)) for k in ("first", "median", "last"))


def markdown(result: dict[str, Any], command: str) -> str:
    """The case as a Markdown section."""
    lines = [
        "# Fair lanes: a bulk flood against high sources",
        "",
        f"`{command}` — {result['high_events']} high events sent on a schedule of "
        f"{result['rate_per_s']:g}/s, alone and again during a flood of "
        f"{result['bulk_events']} bulk events. Latency: the record's `delivered_at` − "
        "`received_at`.",
        "",
        "| run | flood | deliveries at once per lane | high p50 alone | high p95 alone | "
        "high p50 in flood | high p95 in flood | p95 ratio | bulk waiting (first / median / "
        "last high event) | bulk drained |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in CASES:
        case = result.get(name)
        if not case:
            continue
        alone, during = case["high_alone"], case["high_during_flood"]
        lines.append(
            f"| {name.replace('_', ' ')} | {_flood(case)} | {case['shares']} | "
            f"{alone.get('p50_s')} s | {alone.get('p95_s')} s | {during.get('p50_s')} s | "
            f"{during.get('p95_s')} s | {case['p95_ratio']}× | {_backlog(case)} | "
            f"{case['bulk']['delivered']}/{case['bulk']['of']} in {case['flood_drained_s']} s |"
        )
    verdict = "met" if result["met"] else "MISSED"
    measure = result.get("measure", "with_lanes")
    lines += [
        "",
        f"Target: {result['target']}: **{verdict}** "
        f"({result[measure]['p95_ratio']}×, {_backlog(result[measure])} waiting, "
        f"{measure.replace('_', ' ')}).",
        "",
    ]
    lines += _stage_tables(result)
    return "\n".join(lines)


def _stage_tables(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Where a high event's time goes (p50 / p95, seconds)",
        "",
        "Stages (bench/_lanestages.py): `ingress` received → published and answered; "
        "`push` → deliver's request starts; `deliver_backends` → the post to WordPress "
        "starts; `wordpress` the post; outside the figure, `ingress_answer` (the "
        "sender's request) and `before_handler` (its wait for an ingress thread).",
        "",
    ]
    for name in CASES:
        case = result.get(name)
        if not case or "stages" not in case:
            continue
        alone, during = case["stages"]["alone"], case["stages"]["during_flood"]
        lines += [
            f"**{name.replace('_', ' ')}**",
            "",
            "| stage | alone | during the flood |",
            "|---|---|---|",
        ]
        for stage, value in alone.items():
            other = during.get(stage, {})
            lines.append(
                f"| {stage} | {value['p50_s']} / {value['p95_s']} | "
                f"{other.get('p50_s')} / {other.get('p95_s')} |"
            )
        lines += ["", "CPU (cores) while the high events were sent and delivered:", ""]
        for phase in ("alone", "during_flood"):
            window = case["cpu_cores"][phase]
            shares = ", ".join(f"{k} {v}" for k, v in window["cores"].items())
            lines.append(
                f"- {phase.replace('_', ' ')} ({window['seconds']} s, load average "
                f"{window['load_average'][0]}): {shares}"
            )
        lines.append("")
    return lines
