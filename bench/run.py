"""Fast at the edge, not the bottleneck behind it: ``nox -s bench`` (``-- --quick``: a short run).

Every figure is a ratio to a floor measured in the same run on the same
machine (emulators on loopback, a 2-core machine shared with other work: the
absolute numbers mean little, the ratios are the result):

1. ingress throughput and p50/p99 at concurrency 1, 16, 64 (gunicorn under
   functions-framework, THREADS = max(8, concurrency)) against (a) a bare
   functions-framework handler answering 202 and (b) the same backend calls
   (GCS write ∥ Firestore create, then publish) made directly from Python
   with the same concurrency;
2. signature verification per scheme against raw ``hmac`` over the same bytes;
3. CPU ms of the ingress process tree per accepted event against the bare
   handler; cold start (process start to first answer) of each function
   against the bare hello; peak RSS of the ingress under load; a sweep of
   WORKERS × THREADS at concurrency 64, from which the deployed concurrency
   is chosen;
4. drain: events per second into WordPress through the pipeline against
   posting the same records straight to the plugin with the same concurrency;
5. scaling: throughput and p99 from 1 to 4 workers.

Writes ``bench/results/bench.{json,md,png}``.
"""

# ruff: noqa: E501 - the Markdown table rows read better on one line each
from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import FUNCTIONS, REPO, RESULTS, machine, write_json, write_markdown
from bench._load import LoadResult, Server, build_requests, run_load
from hookpress.local.emulators import Emulators, ensure_bucket, ensure_topic
from hookpress.local.stack import SCHEME_SOURCES, generate_secret
from hookpress.signatures import SCHEMES

BARE = REPO / "bench" / "bare_function.py"
INGRESS = FUNCTIONS / "ingress" / "main.py"
DELIVER = FUNCTIONS / "deliver" / "main.py"
CONCURRENCY = (1, 16, 64)
SWEEP = ((1, 8), (1, 16), (1, 32), (1, 64), (2, 16), (3, 16), (4, 16))


@dataclass(frozen=True)
class Plan:
    """How much of everything to do."""

    requests: dict[int, int]
    sweep_requests: int
    cold_starts: int
    drain_events: int
    verify_iterations: int


FULL = Plan({1: 300, 16: 1500, 64: 3000}, 2000, 3, 600, 20_000)
QUICK = Plan({1: 60, 16: 300, 64: 600}, 400, 1, 120, 3_000)


def say(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


# -- the environment ---------------------------------------------------------------------


@dataclass
class Bench:
    """The emulators, the ingress configuration and the secrets of one run."""

    emulators: Emulators
    workdir: Path
    env: dict[str, str]
    secrets: dict[str, str]
    schemes: dict[str, str]
    tag: str

    def requests(self, n: int) -> list[bytes]:
        """N fresh signed events."""
        self.tag = secrets.token_hex(3)
        return build_requests(n, self.tag, self.secrets, self.schemes)


@contextlib.contextmanager
def bench_environment(workdir: Path) -> Iterator[Bench]:
    """Emulators on loopback, a bucket, a topic with a subscription, a secrets file."""
    from google.cloud import pubsub_v1

    emulators = Emulators(workdir / "emulators").start()
    saved = {k: os.environ.get(k) for k in emulators.env}
    os.environ.update(emulators.env)
    try:
        project = emulators.project
        ensure_bucket(project, "hookpress-bench")
        topic = ensure_topic(project, "bench-events")
        sub = pubsub_v1.SubscriberClient()
        sub.create_subscription(
            request={"name": sub.subscription_path(project, "bench-events"), "topic": topic}
        )
        schemes = {s: s for s in sorted(SCHEMES)}
        keys = {s: generate_secret(s) for s in schemes}
        secrets_file = workdir / "secrets.json"
        secrets_file.write_text(json.dumps({f"bench-{s}": [v] for s, v in keys.items()}))
        env = {
            **emulators.env,
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_SOURCES": json.dumps(
                {s: {"scheme": s, "secret": f"bench-{s}"} for s in schemes}
            ),
            "HOOKPRESS_RAW_BUCKET": "hookpress-bench",
            "HOOKPRESS_EVENTS_TOPIC": "bench-events",
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        }
        yield Bench(emulators, workdir, env, keys, schemes, "")
    finally:
        emulators.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- 1. ingress vs floors ---------------------------------------------------------------------


def load_server(
    bench: Bench,
    source: Path,
    target: str,
    workers: int,
    threads: int,
    requests: list[bytes],
    c: int,
) -> LoadResult:
    """Start a server, warm it, load it, stop it."""
    with Server(source, target, bench.env, workers=workers, threads=threads) as server:
        run_load(server.port, bench.requests(max(8, workers * 4)), min(c, 8))  # warm every worker
        return run_load(server.port, requests, c, server)


def direct_calls(bench: Bench, n: int, c: int) -> LoadResult:
    """The ingress's backend calls from Python, ``c`` at a time: GCS ∥ Firestore, then publish."""
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import EventPublisher

    project = bench.emulators.project
    raw = RawStore(project, "hookpress-bench", 10)
    records = EventRecords(project, "(default)", "events", 10)
    publisher = EventPublisher(project, "bench-events", 10)
    side = ThreadPoolExecutor(32)
    body = b"x" * 600
    tag = secrets.token_hex(3)
    latencies: list[float] = []

    def one(i: int) -> None:
        key = hashlib.sha256(f"direct-{tag}-{i}".encode()).hexdigest()
        now = datetime.now(UTC)
        started = time.perf_counter()
        stored = side.submit(raw.put, f"raw/direct/{key}.json", body, {"scheme": "x"})
        records.create(key, {"status": "received", "received_at": now, "source": "direct"})
        stored.result()
        publisher.publish(key, "direct")
        latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(c) as pool:
        wait([pool.submit(one, -i - 1) for i in range(min(n, 16))])  # warm the clients
        latencies.clear()
        started = time.perf_counter()
        list(pool.map(one, range(n)))
        wall = time.perf_counter() - started
    side.shutdown()
    return LoadResult(c, latencies, {202: n}, wall)


def figure_ingress(bench: Bench, plan: Plan) -> dict[str, Any]:
    """Ingress, bare 202 and direct calls at each concurrency."""
    out: dict[str, Any] = {"levels": []}
    for c in CONCURRENCY:
        n = plan.requests[c]
        threads = max(8, c)
        say(f"[1] concurrency {c}: ingress")
        ingress = load_server(bench, INGRESS, "ingress", 1, threads, bench.requests(n), c)
        say(f"[1] concurrency {c}: bare 202")
        bare = load_server(bench, BARE, "accepted", 1, threads, bench.requests(n), c)
        say(f"[1] concurrency {c}: direct backend calls")
        direct = direct_calls(bench, n, c)
        level = {
            "concurrency": c,
            "threads": threads,
            "ingress": ingress.figures(),
            "bare_202": bare.figures(),
            "direct_calls": direct.figures(),
            "throughput_vs_direct": round(ingress.throughput / direct.throughput, 3),
            "p99_vs_direct": round(
                ingress.figures()["p99_ms"] / max(direct.figures()["p99_ms"], 0.001),
                3,  # type: ignore[operator]
            ),
            "throughput_vs_bare": round(ingress.throughput / bare.throughput, 3),
            "cpu_per_event_vs_bare": round(
                (ingress.cpu_s / len(ingress.latencies_s))
                / max(bare.cpu_s / len(bare.latencies_s), 1e-9),
                3,
            ),
            "_latencies": {
                "ingress": ingress.latencies_s,
                "bare_202": bare.latencies_s,
                "direct_calls": direct.latencies_s,
            },
        }
        out["levels"].append(level)
    return out


# -- 2. verification -----------------------------------------------------------------------


def figure_verification(plan: Plan) -> dict[str, Any]:
    """verify() per scheme against raw hmac over the same signed bytes, two body sizes."""
    out: dict[str, Any] = {}
    now = time.time()
    for size in (1024, 64 * 1024):
        body = json.dumps({"id": "evt_1", "event_id": "Ev1", "p": "x" * size})[:size].encode()
        rows = {}
        for name, scheme in sorted(SCHEMES.items()):
            secret = generate_secret(name)
            headers = {
                k.lower(): v
                for k, v in scheme.sign(body, secret, now=now, delivery_id="d1").items()
            }
            key = (
                scheme.key(secret)  # type: ignore[attr-defined]
                if name == "standard-webhooks"
                else secret.encode()
            )
            ts = str(int(now))
            signed = {
                "hmac-timestamp": ts.encode() + b"." + body,
                "standard-webhooks": f"d1.{ts}.".encode() + body,
                "stripe": ts.encode() + b"." + body,
                "github": body,
                "slack": f"v0:{ts}:".encode() + body,
                "shopify": body,
            }[name]
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            n = plan.verify_iterations if size == 1024 else plan.verify_iterations // 10

            def verify(
                scheme: Any = scheme,
                headers: Any = headers,
                secret: str = secret,
                body: bytes = body,
            ) -> None:
                scheme.verify(body, headers, [secret], now=now, tolerance=300)

            def raw(key: bytes = key, signed: bytes = signed, expected: bytes = expected) -> None:
                hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), expected)

            t_verify = _best_of(verify, n)
            t_raw = _best_of(raw, n)
            rows[name] = {
                "verify_per_s": round(1 / t_verify),
                "raw_hmac_per_s": round(1 / t_raw),
                "ratio": round(t_raw / t_verify, 3),
            }
        out[f"{size // 1024}KiB"] = rows
    return out


def _best_of(fn: Callable[[], None], n: int, repeats: int = 5) -> float:
    """Seconds per call, the best of ``repeats`` runs of ``n`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best


# -- 3. cold start, CPU, RSS, sweep ------------------------------------------------------------


def _first_answer(port: int, request: bytes | None) -> int:
    if request is None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            return int(resp.status)
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    path = lines[0].split(" ")[1]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def figure_cold_start(bench: Bench, plan: Plan) -> dict[str, Any]:
    """Process start to first answer: ingress (a signed event), deliver (a push), bare hello."""
    deliver_env = {
        **bench.env,
        "HOOKPRESS_WP_BASE_URL": "http://127.0.0.1:9/wp-json",
        "HOOKPRESS_WP_USER": "bench",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": "bench-github",
        "HOOKPRESS_PUSH_AUTH": "none",
    }
    cases: dict[str, tuple[Path, str, dict[str, str], Callable[[], bytes | None]]] = {
        "hello": (BARE, "hello", bench.env, lambda: None),
        "ingress": (INGRESS, "ingress", bench.env, lambda: bench.requests(1)[0]),
        "deliver": (DELIVER, "deliver", deliver_env, lambda: _push_request()),
    }
    out: dict[str, Any] = {}
    for name, (source, target, env, request) in cases.items():
        times, statuses = [], []
        for _ in range(plan.cold_starts):
            server = Server(source, target, env)
            started = time.perf_counter()
            server.start()
            try:
                statuses.append(_first_answer(server.port, request()))
                times.append(time.perf_counter() - started)
            finally:
                server.stop()
        out[name] = {"seconds": round(statistics.median(times), 3), "statuses": statuses}
    hello = out["hello"]["seconds"]
    for name in ("ingress", "deliver"):
        out[name]["vs_hello"] = round(out[name]["seconds"] / hello, 3)
    return out


def _push_request() -> bytes:
    # A push whose key has no record: the deliver function answers 204 (nothing to deliver),
    # after building its runtime and reading Firestore: a real first request.
    data = json.dumps({"event_key": "0" * 64}).encode()
    import base64

    envelope = json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": {"event_key": "0" * 64, "source": "github"},
                "messageId": "1",
            },
            "subscription": "projects/p/subscriptions/s",
        }
    ).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(envelope)}"
    )
    return head.encode() + b"\r\n\r\n" + envelope


def figure_sweep(bench: Bench, plan: Plan) -> list[dict[str, Any]]:
    """WORKERS × THREADS at concurrency 64 (scaling is the THREADS=16 column)."""
    rows = []
    for workers, threads in SWEEP:
        say(f"[3/5] sweep workers={workers} threads={threads}")
        result = load_server(
            bench, INGRESS, "ingress", workers, threads, bench.requests(plan.sweep_requests), 64
        )
        rows.append({"workers": workers, "threads": threads, **result.figures()})
    return rows


def choose_concurrency(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """One worker (a 1-CPU instance): the fewest threads within 5 % of the best throughput."""
    single = [r for r in sweep if r["workers"] == 1]
    best = max(r["throughput_rps"] for r in single)
    good = [r for r in single if r["throughput_rps"] >= 0.95 * best]
    chosen = min(good, key=lambda r: r["threads"])
    return {
        "concurrency": chosen["threads"],
        "throughput_rps": chosen["throughput_rps"],
        "p99_ms": chosen["p99_ms"],
        "best_single_worker_rps": best,
    }


# -- 4. drain ---------------------------------------------------------------------------------


def figure_drain(bench: Bench, plan: Plan) -> dict[str, Any]:
    """Events per second into WordPress through the pipeline vs straight to the plugin."""
    import httpx
    from google.cloud import firestore

    from hookpress.local.stack import LocalStack, StackOptions

    n = plan.drain_events
    options = StackOptions(
        project="hookpress-bench-drain", breaker_threshold=1000, sources=dict(SCHEME_SOURCES)
    )
    stack = LocalStack(bench.workdir / "drain", options, emulators=bench.emulators).start()
    try:
        site = stack.site
        concurrency = options.threads  # the deliver function's threads
        if stack.ingress is None:
            raise RuntimeError("the stack is not running")
        schemes = dict(options.sources)
        keys = {s: v[0] for s, v in stack.source_secrets.items()}
        tag = secrets.token_hex(3)
        requests = build_requests(n, tag, keys, schemes)
        db = firestore.Client(project=options.project)
        say(f"[4] drain: {n} events through the pipeline")
        started = time.perf_counter()
        run_load(stack.ingress.port, requests, 16)
        sent = time.perf_counter() - started
        event_keys = [
            hashlib.sha256(
                f"{sorted(keys)[i % len(keys)]}:bench-{tag}-{i:06d}".encode()
            ).hexdigest()
            for i in range(n)
        ]
        col = db.collection("events")
        while True:
            delivered = sum(
                1
                for start in range(0, n, 300)
                for snap in db.get_all([col.document(k) for k in event_keys[start : start + 300]])
                if snap.exists and (snap.to_dict() or {}).get("status") == "delivered"
            )
            if delivered >= n or time.perf_counter() - started > 900:
                break
            time.sleep(0.5)
        pipeline_s = time.perf_counter() - started

        say(f"[4] drain: {n} records straight to the plugin, {concurrency} at a time")
        records = [
            {
                "source": "direct",
                "external_id": f"direct-{tag}-{i:06d}",
                "status": "completed",
                "summary": "bench",
                "metadata": {"n": i},
                "occurred_at": "2026-01-01T00:00:00Z",
            }
            for i in range(n)
        ]
        with httpx.Client(auth=(site.ingest_user, site.app_password), timeout=60) as client:

            def post(record: dict[str, Any]) -> int:
                return client.post(
                    site.ingest_url, json=record, headers={"Idempotency-Key": record["external_id"]}
                ).status_code

            with ThreadPoolExecutor(concurrency) as pool:
                started = time.perf_counter()
                codes = list(pool.map(post, records))
                direct_s = time.perf_counter() - started
    finally:
        stack.stop()
    pipeline_rate = delivered / pipeline_s
    direct_rate = n / direct_s
    return {
        "events": n,
        "concurrency": concurrency,
        "pipeline_delivered": delivered,
        "pipeline_send_s": round(sent, 2),
        "pipeline_s": round(pipeline_s, 2),
        "pipeline_per_s": round(pipeline_rate, 1),
        "direct_s": round(direct_s, 2),
        "direct_per_s": round(direct_rate, 1),
        "direct_statuses": {str(c): codes.count(c) for c in sorted(set(codes))},
        "ratio": round(pipeline_rate / direct_rate, 3),
    }


# -- output -----------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    """Latency distributions and throughput per concurrency; scaling by workers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["ingress"]["levels"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    names = ("ingress", "bare_202", "direct_calls")
    colors = {"ingress": "tab:blue", "bare_202": "tab:gray", "direct_calls": "tab:orange"}
    ax = axes[0]
    positions, data, cols = [], [], []
    for i, level in enumerate(levels):
        for j, name in enumerate(names):
            positions.append(i * 4 + j)
            data.append([x * 1000 for x in level["_latencies"][name]])
            cols.append(colors[name])
    parts = ax.boxplot(data, positions=positions, widths=0.8, showfliers=False, patch_artist=True)
    for patch, color in zip(parts["boxes"], cols, strict=True):
        patch.set_facecolor(color)
    ax.set_xticks(
        [i * 4 + 1 for i in range(len(levels))], [f"c={lv['concurrency']}" for lv in levels]
    )
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency (box: p25–p75, whiskers 1.5 IQR)")
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in names], names, fontsize=8)

    ax = axes[1]
    width = 0.27
    for j, name in enumerate(names):
        ax.bar(
            [i + (j - 1) * width for i in range(len(levels))],
            [lv[name]["throughput_rps"] for lv in levels],
            width,
            label=name,
            color=colors[name],
        )
    ax.set_xticks(range(len(levels)), [f"c={lv['concurrency']}" for lv in levels])
    ax.set_ylabel("requests per second")
    ax.set_title("Throughput per concurrency")
    ax.legend(fontsize=8)

    ax = axes[2]
    scaling = [r for r in results["sweep"] if r["threads"] == 16]
    ax.plot(
        [r["workers"] for r in scaling],
        [r["throughput_rps"] for r in scaling],
        "o-",
        label="throughput",
    )
    ax.set_xlabel("gunicorn workers (16 threads each), concurrency 64")
    ax.set_ylabel("requests per second")
    ax2 = ax.twinx()
    ax2.plot(
        [r["workers"] for r in scaling],
        [r["p99_ms"] for r in scaling],
        "s--",
        color="tab:red",
        label="p99",
    )
    ax2.set_ylabel("p99 (ms)")
    ax.set_title("Scaling 1 → 4 workers")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _verdict(value: float, target: float, higher_is_better: bool) -> str:
    met = value >= target if higher_is_better else value <= target
    if met:
        return "met"
    gap = (target - value) / target if higher_is_better else (value - target) / target
    return f"missed by {gap:.0%}"


def markdown(results: dict[str, Any], command: str) -> str:
    """The tables."""
    lines = ["# Benchmark", "", f"Command: `{command}`", ""]
    lines += [
        "## 1. Ingress against its floors",
        "",
        "| c | ingress rps | p50 / p99 ms | bare 202 rps | p50 / p99 ms | direct calls rps | p50 / p99 ms "
        "| rps vs direct (≥ 0.8) | p99 vs direct (≤ 1.5) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in results["ingress"]["levels"]:
        i, b, d = lv["ingress"], lv["bare_202"], lv["direct_calls"]
        lines.append(
            f"| {lv['concurrency']} | {i['throughput_rps']} | {i['p50_ms']} / {i['p99_ms']} "
            f"| {b['throughput_rps']} | {b['p50_ms']} / {b['p99_ms']} "
            f"| {d['throughput_rps']} | {d['p50_ms']} / {d['p99_ms']} "
            f"| {lv['throughput_vs_direct']} ({_verdict(lv['throughput_vs_direct'], 0.8, True)}) "
            f"| {lv['p99_vs_direct']} ({_verdict(lv['p99_vs_direct'], 1.5, False)}) |"
        )
    lines += ["", "## 2. Verification against raw hmac (target ≥ 0.9)", ""]
    lines += [
        "| scheme | 1 KiB verify/s | raw/s | ratio | 64 KiB verify/s | raw/s | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    small, large = results["verification"]["1KiB"], results["verification"]["64KiB"]
    for name in small:
        s, g = small[name], large[name]
        lines.append(
            f"| {name} | {s['verify_per_s']:,} | {s['raw_hmac_per_s']:,} | {s['ratio']} ({_verdict(s['ratio'], 0.9, True)}) "
            f"| {g['verify_per_s']:,} | {g['raw_hmac_per_s']:,} | {g['ratio']} ({_verdict(g['ratio'], 0.9, True)}) |"
        )
    cold = results["cold_start"]
    lines += [
        "",
        "## 3. Cost per event, cold start, memory",
        "",
        "| figure | value | floor | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for lv in results["ingress"]["levels"]:
        i, b = lv["ingress"], lv["bare_202"]
        lines.append(
            f"| CPU ms per accepted event, c={lv['concurrency']} | {i['cpu_ms_per_request']} | {b['cpu_ms_per_request']} (bare 202) "
            f"| {lv['cpu_per_event_vs_bare']} | ≤ 2.5 ({_verdict(lv['cpu_per_event_vs_bare'], 2.5, False)}) |"
        )
    for name in ("ingress", "deliver"):
        lines.append(
            f"| cold start {name} (s) | {cold[name]['seconds']} | {cold['hello']['seconds']} (hello) "
            f"| {cold[name]['vs_hello']} | ≤ 2 ({_verdict(cold[name]['vs_hello'], 2.0, False)}) |"
        )
    peak = max(lv["ingress"]["peak_rss_mib"] for lv in results["ingress"]["levels"])
    peak_sweep = max(r["peak_rss_mib"] for r in results["sweep"])
    lines.append(
        f"| peak RSS of the ingress tree, 1 worker (MiB) | {peak} | | | ≤ 200 ({_verdict(peak, 200, False)}) |"
    )
    lines.append(
        f"| peak RSS, any sweep configuration (MiB) | {peak_sweep} | | | (4 workers: 4 processes) |"
    )
    lines += [
        "",
        "### WORKERS × THREADS at concurrency 64",
        "",
        "| workers | threads | rps | p50 ms | p99 ms | CPU ms/event | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['workers']} | {r['threads']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['cpu_ms_per_request']} | {r['peak_rss_mib']} |"
            for r in results["sweep"]
        ),
        "",
        f"Chosen per-instance concurrency: **{results['chosen']['concurrency']}** "
        f"(one worker, the fewest threads within 5 % of the best single-worker throughput, "
        f"{results['chosen']['best_single_worker_rps']} rps).",
    ]
    dr = results["drain"]
    lines += [
        "",
        "## 4. Drain into WordPress",
        "",
        "| path | events | seconds | per second |",
        "|---|---|---|---|",
        f"| pipeline (ingress → Pub/Sub push → deliver → plugin) | {dr['pipeline_delivered']} | {dr['pipeline_s']} | {dr['pipeline_per_s']} |",
        f"| straight to the plugin, {dr['concurrency']} at a time | {dr['events']} | {dr['direct_s']} | {dr['direct_per_s']} |",
        "",
        f"Ratio {dr['ratio']} (target ≥ 0.9: {_verdict(dr['ratio'], 0.9, True)}).",
        "",
        "## 5. Scaling (THREADS=16, concurrency 64)",
        "",
        "| workers | rps | p99 ms |",
        "|---|---|---|",
        *(
            f"| {r['workers']} | {r['throughput_rps']} | {r['p99_ms']} |"
            for r in results["sweep"]
            if r["threads"] == 16
        ),
        "",
        "![latency and throughput](bench.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.run [--quick]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about 3 minutes)")
    parser.add_argument("--skip-drain", action="store_true", help="no WordPress needed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    command = "nox -s bench" + (" -- --quick" if args.quick else "")
    results: dict[str, Any] = {"command": command, "machine": machine(), "plan": plan.__dict__}
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="hookpress-bench-") as tmp,
        bench_environment(Path(tmp)) as bench,
    ):
        say("[2] verification")
        results["verification"] = figure_verification(plan)
        say("[3] cold starts")
        results["cold_start"] = figure_cold_start(bench, plan)
        results["ingress"] = figure_ingress(bench, plan)
        results["sweep"] = figure_sweep(bench, plan)
        results["chosen"] = choose_concurrency(results["sweep"])
        results["drain"] = figure_drain(bench, plan) if not args.skip_drain else {"skipped": True}
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "bench.png")
    for level in results["ingress"]["levels"]:
        level.pop("_latencies")
    write_json(args.out / "bench.json", results)
    text = (
        markdown(results, command) if not args.skip_drain else markdown_no_drain(results, command)
    )
    write_markdown(args.out / "bench.md", text)
    print(text)
    return 0


def markdown_no_drain(results: dict[str, Any], command: str) -> str:
    """The tables, with the drain left out."""
    results = {
        **results,
        "drain": {
            "pipeline_delivered": 0,
            "pipeline_s": 0,
            "pipeline_per_s": 0,
            "events": 0,
            "direct_s": 0,
            "direct_per_s": 0,
            "concurrency": 0,
            "ratio": 0.0,
        },
    }
    return markdown(results, command)


if __name__ == "__main__":
    raise SystemExit(main())
