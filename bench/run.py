"""Fast at the edge, not the bottleneck behind it: ``nox -s bench`` (``-- --quick``: a short run).

Every figure is a ratio to a floor measured in the same run on the same
machine (emulators on loopback, a 2-core machine shared with other work: the
absolute numbers mean little, the ratios are the result):

1. ingress throughput, p50/p99 and CPU per accepted event at concurrency 1,
   16, 64 (functions-framework's ASGI mode, as deployed: uvicorn's worker under
   gunicorn, the pipeline in a pool of THREADS = max(8, concurrency) threads)
   against (a) a bare functions-framework handler answering 202 (in the default
   mode, the issue's yardstick; and in ASGI mode, beside it), (b) the
   seed's own design, ``../shared/anchors/seed-django`` (bench/_seed.py),
   loaded with the same events at the same concurrency, and (c) the same
   backend calls (GCS write ∥ Firestore create, then publish) made directly
   from Python with the same concurrency;
2. signature verification per scheme against raw ``hmac`` over the same bytes;
3. cold start (process start to first answer) of each function against the
   bare hello, with every module's import time (``-X importtime``) kept in
   ``bench/results/importtime/``; where a request's time goes at concurrency 1
   and a cold start's, stage by stage (bench/timeline.py); peak RSS of the
   ingress under load; a sweep of WORKERS × THREADS at concurrency 64, from
   which the deployed concurrency is chosen;
4. drain: events per second into WordPress through the pipeline against
   posting the same records straight to the plugin with the same
   concurrency, and deliver's own CPU per delivered event against a bare
   httpx POST of the same records to the same WordPress (bench/_wp_post.py);
   deliver runs as deployed (one push at a time, :data:`DRAIN_THREADS`);
5. scaling: throughput and p99 from 1 to 4 workers.

Writes ``bench/results/bench.{json,md,png}``. ``-- --profile`` instead
records where the ingress's time goes: a py-spy flame graph per concurrency
and a table of self time (``bench/results/profile/``).
"""

# ruff: noqa: E501 - the Markdown table rows read better on one line each
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _perf, _profile, timeline, wake_probe
from bench._common import (
    FUNCTIONS,
    REPO,
    RESULTS,
    machine,
    summary,
    work_directory,
    write_json,
    write_markdown,
)
from bench._load import (
    BlockingConnection,
    LoadResult,
    ProcessTree,
    Schedstat,
    Server,
    build_requests,
    event_bodies,
    run_load,
    sign_requests,
)
from bench._seed import SEED_SECRET, SEED_SOURCE, SeedAnchor
from bench.candidates import BARE_ASGI  # the bare 202 in ASGI mode
from hookpress.backends.pubsub import Message
from hookpress.lanes import DELIVER_CONCURRENCY
from hookpress.local.emulators import Emulators, emulators_in_env, ensure_bucket, ensure_topic
from hookpress.local.stack import SCHEME_SOURCES, generate_secret
from hookpress.signatures import SCHEMES

BARE = REPO / "bench" / "bare_function.py"
INGRESS = FUNCTIONS / "ingress" / "main.py"
ASGI_INGRESS = REPO / "bench" / "asgi_ingress.py"  # a candidate: see its docstring
SERVED = REPO / "bench" / "served_calls.py"  # the floor's calls over HTTP: see its docstring
WAKE_ROUND_TRIPS = 1_000  # per row of the wake probe, before the run: about 12 s in all
#: ``--yardsticks``: the served calls on an asyncio wire with no thread pool (DESIGN's
#: order), and in Flask mode with the publish sent alongside the writes (not DESIGN's
#: order): what a handler making the three calls could reach, and what the order costs.
#: Front name: (source, target, ASGI mode). See bench/served_calls.py.
YARDSTICKS: dict[str, tuple[Path, str, bool]] = {
    "served_calls_asgi": (ASGI_INGRESS, "served_calls", True),
    "served_calls_overlapped": (SERVED, "served_overlapped", False),
}
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


#: Fifteen cold starts a case (seven before run 26e): the ingress's ratio sits at the line,
#: and seven starts left its median up to 0.14 apart from one run to the next.
FULL = Plan({1: 300, 16: 1500, 64: 3000}, 2000, 15, 600, 20_000)
QUICK = Plan({1: 60, 16: 300, 64: 600}, 400, 3, 120, 3_000)


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
    seed: SeedAnchor | None = None

    def requests(self, n: int) -> list[bytes]:
        """N fresh signed events."""
        self.tag = secrets.token_hex(3)
        return build_requests(n, self.tag, self.secrets, self.schemes)

    def signed(self, events: Sequence[tuple[str, bytes]]) -> list[bytes]:
        """These events as the ingress's sources would send them (signed now)."""
        return sign_requests(events, self.secrets, self.schemes)


def seed_requests(events: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """The same events as the seed's one source would send them (signed now)."""
    return sign_requests(events, {SEED_SOURCE: SEED_SECRET}, {SEED_SOURCE: "hmac-timestamp"})


@contextlib.contextmanager
def bench_environment(workdir: Path) -> Iterator[Bench]:
    """Emulators on loopback, a bucket, a topic with a subscription, a secrets file."""
    from google.cloud import pubsub_v1

    with emulators_in_env(workdir / "emulators") as emulators:
        project = emulators.project
        ensure_bucket(project, "hookpress-bench")
        topic = ensure_topic(project, "bench-events")
        sub = pubsub_v1.SubscriberClient()
        sub.create_subscription(
            request={"name": sub.subscription_path(project, "bench-events"), "topic": topic}
        )
        # One source per HMAC scheme, as the chaos run and the drain use (the local stack's
        # SCHEME_SOURCES): the seed's design verifies one HMAC scheme too.
        schemes = dict(SCHEME_SOURCES)
        keys = {s: generate_secret(scheme) for s, scheme in schemes.items()}
        secrets_file = workdir / "secrets.json"
        secrets_file.write_text(json.dumps({f"bench-{s}": [v] for s, v in keys.items()}))
        env = {
            **emulators.env,
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_SOURCES": json.dumps(
                {s: {"scheme": scheme, "secret": f"bench-{s}"} for s, scheme in schemes.items()}
            ),
            "HOOKPRESS_RAW_BUCKET": "hookpress-bench",
            "HOOKPRESS_EVENTS_TOPIC": "bench-events",
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        }
        warm_backends(project)
        bench = Bench(emulators, workdir, env, keys, schemes, "")
        warm_emulators(bench)
        yield bench


def warm_backends(project: str) -> None:
    """Every emulator route the functions use, called a few times before anything is measured.

    The JVM emulators answer the first call of each route slowly (measured: a first
    ``batchWrite`` 0.9 s, a first ``publish`` 0.2 s, later ones tens of ms): left in,
    that is the emulators' warm-up, measured as whichever figure runs first.
    """
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import EventPublisher

    raw = RawStore(project, "hookpress-bench", 30)
    records = EventRecords(project, "(default)", "warm-up", 30)
    publisher = EventPublisher(project, "bench-events", 30)
    for _ in range(3):
        key = secrets.token_hex(16)
        raw.put(f"warm-up/{key}.json", b"{}")
        raw.get(f"warm-up/{key}.json")
        created = records.create(key, {"status": "received"})
        if created is not None:
            records.transition(key, created, {"status": "published"})
            records.set(key, {"attempts": records.increment(1)})
        records.get(key)
        publisher.publish(key, "warm-up")


#: events sent through an ingress before anything is measured (see warm_emulators)
WARM_EVENTS = 2000
#: at each level of figure 1, every front's warm-up: this many requests per connection
WARM_PER_CONNECTION = 16


def warm_emulators(bench: Bench, n: int = WARM_EVENTS) -> None:
    """``n`` events through an ingress, 4 at a time, before any figure is measured.

    The Pub/Sub and Firestore emulators are Java: their routes run interpreted until the
    JIT has compiled them, over the first thousand or so calls. Measured from a fresh
    start, the three backend calls alone, one at a time, in blocks of 200: p50 11.5,
    8.5, 9.6, 8.5, 9.0, 8.3, 7.5 ms, then 5.2–7.9 ms for the thirteen blocks after
    (bench/RESULTS.md, "True CPU at concurrency 1", run 20). A request's CPU grows
    with how long its thread sleeps on an answer, so whichever figure ran first (c = 1)
    paid for the emulators' warm-up in the ingress's CPU, not the bare 202's. Google's
    services are always warm; the ingress itself is not warmed here (its figure-1
    server starts afresh, as the other fronts' do). An ingress sends the routes of every
    kind its events take: uploads, creates with and without a body marker, publishes,
    the marks.
    """
    if n <= 0:
        return
    say(f"[0] warming the emulators: {n} events through an ingress")
    with Server(INGRESS, "ingress", bench.env, workers=1, threads=8) as server:
        statuses = run_load(server.port, bench.requests(n), 4).statuses
    if set(statuses) != {202}:
        raise RuntimeError(f"the warm-up was not accepted whole: {statuses}")


# -- 1. ingress vs floors ---------------------------------------------------------------------


def direct_calls(bench: Bench, n: int, c: int) -> LoadResult:
    """The ingress's backend calls from Python, ``c`` at a time: GCS ∥ Firestore, then publish.

    The same adapters the ingress uses, called the same way (the upload in flight while the
    record is created), with no HTTP server, verification or parsing in front.
    """
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import EventPublisher

    project = bench.emulators.project
    raw = RawStore(project, "hookpress-bench", 10)
    records = EventRecords(project, "(default)", "events", 10)
    publisher = EventPublisher(project, "bench-events", 10)
    body = b"x" * 600
    tag = secrets.token_hex(3)
    latencies: list[float] = []

    def one(i: int) -> None:
        key = hashlib.sha256(f"direct-{tag}-{i}".encode()).hexdigest()
        now = datetime.now(UTC)
        started = time.perf_counter()
        stored = raw.start_put(f"raw/direct/{key}.json", body, {"scheme": "x"})
        records.create(key, {"status": "received", "received_at": now, "source": "direct"})
        stored()
        publisher.publish(key, "direct")
        latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(c) as pool:
        wait([pool.submit(one, -i - 1) for i in range(min(n, 16))])  # warm the clients
        latencies.clear()
        started = time.perf_counter()
        list(pool.map(one, range(n)))
        wall = time.perf_counter() - started
    return LoadResult(c, latencies, {202: n}, wall)


def direct_same_calls(
    bench: Bench,
    events: Sequence[tuple[str, bytes]],
    c: int,
    env: Mapping[str, str] | None = None,
) -> LoadResult:
    """:func:`direct_calls` making literally the ingress's three calls for these events.

    ``bench.served_calls.Floor.event``: the object, record and message built as
    the ingress builds them, the event's own body with the GCS metadata, the
    full record, the message's attributes, and the sources in the same
    rotation as :func:`bench._load.sign_requests`. Not the GitHub/Shopify body
    marker, nor the ``published`` mark riding with the next write: neither is
    one of the three calls. Keys of their own (the ingress has stored these
    events already). Building them is inside the timing, as it is inside the
    ingress's. ``env``: where the emulators are, if not ``bench.env``'s (figure_distance).
    """
    from bench.served_calls import Floor
    from hookpress.settings import IngressSettings

    floor = Floor(IngressSettings.from_env(env or bench.env), env=env)
    names = sorted(bench.secrets)
    tag = secrets.token_hex(3)
    latencies: list[float] = []
    cpu: list[float] = []
    sched: list[Schedstat] = []

    def one(i: int) -> None:
        ident, body = events[i % len(events)]
        source = floor.settings.sources[names[i % len(names)]]
        before = Schedstat.of_thread()
        started, thread_cpu = time.perf_counter(), time.thread_time()
        floor.event(source, f"{ident}-{tag}-{i}", body)
        latencies.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - thread_cpu)
        sched.append(Schedstat.of_thread() - before)

    n = len(events)
    with ThreadPoolExecutor(c) as pool:
        wait([pool.submit(one, n + i) for i in range(min(n, 16))])  # warm the clients
        latencies.clear()
        cpu.clear()
        sched.clear()
        started = time.perf_counter()
        list(pool.map(one, range(n)))
        wall = time.perf_counter() - started
    # CPU, waits for a core and wake-ups: the calling threads' own (no server, no other
    # thread of this process)
    spent = sum(sched, Schedstat())
    return LoadResult(
        c, latencies, {202: n}, wall, sum(cpu), 0.0, spent.queued_ns / 1e9, spent.scheduled
    )


def _marker_split(
    bench: Bench, requests: Sequence[bytes], latencies: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Latencies of one connection's requests (in order), split by whether the event's
    provider takes issue 10's body marker (``id_unsigned``: GitHub, Shopify)."""
    from hookpress.providers import PROVIDERS
    from hookpress.settings import IngressSettings

    sources = IngressSettings.from_env(bench.env).sources
    marked: list[float] = []
    plain: list[float] = []
    for raw, latency in zip(requests, latencies, strict=True):
        name = raw.split(b" ", 2)[1].decode().strip("/")
        (marked if PROVIDERS[sources[name].provider].id_unsigned else plain).append(latency)
    return marked, plain


def _ratio(value: float, floor: float) -> float:
    return round(value / floor, 3) if floor else 0.0


def _vs(front: Mapping[str, Any], floor: Mapping[str, Any], key: str) -> float:
    """One front's figure ``key`` against another's (both from ``LoadResult.figures``)."""
    return _ratio(front[key], floor[key])


ROUNDS = 3  # each front's load in this many interleaved parts (see figure_ingress)


@dataclass(frozen=True)
class _Tree(ProcessTree):
    """A process tree by its root's pid (an emulator: the gcloud wrapper and its JVM)."""

    per_thread = False  # the JVMs start and end threads: read the processes' counters
    pid: int

    @property
    def root_pid(self) -> int:
        """The root's pid."""
        return self.pid


def _side_cpu(trees: Mapping[str, ProcessTree]) -> dict[str, float]:
    """CPU seconds so far of what serves a front besides the front itself: each emulator's
    process tree, and this process (the load generator; the direct floors' calls too)."""
    out = {name: tree.cpu_s() for name, tree in trees.items()}
    out["load"] = time.process_time()
    return out


def _emulator_trees(bench: Bench) -> dict[str, ProcessTree]:
    emulators = bench.emulators
    named = (
        ("firestore", emulators.firestore),
        ("pubsub", emulators.pubsub),
        ("storage", emulators.storage),
    )
    return {n: _Tree(e.pid) for n, e in named if e is not None and e.pid is not None}


def figure_ingress(
    bench: Bench,
    plan: Plan,
    levels: Sequence[int] = CONCURRENCY,
    *,
    asgi: bool = False,
    yardsticks: bool = False,
) -> dict[str, Any]:
    """Ingress, bare 202, the seed's design and direct calls at each concurrency, same events.

    The machine is shared and its load drifts over minutes, so the fronts take
    turns: each level's events are cut into ``ROUNDS`` parts, and every part
    goes to each front in turn (the order rotating per round) with all the
    servers up. A front's figures are its rounds pooled; a drift in the
    machine's load falls on every front alike instead of on whichever ran last.
    The bare 202 is served twice: in functions-framework's default mode (Flask under
    gunicorn's threads: issue 12's yardstick) and in the ASGI mode the ingress runs in.
    With ``asgi``, one more front: the candidate ``bench/asgi_ingress.py``. With
    ``yardsticks``, two more: the served calls on an asyncio wire and with the publish
    overlapped (:data:`YARDSTICKS`).
    """
    out: dict[str, Any] = {
        "levels": [],
        "rounds": ROUNDS,
        "seed_workers": bench.seed.workers if bench.seed else 0,
    }
    if bench.seed is not None:
        run_load(bench.seed.port, seed_requests(event_bodies(32, "warm")), 8)  # warm its workers
    for c in levels:
        n = plan.requests[c]
        threads = max(8, c)
        split: tuple[list[float], list[float]] = ([], [])
        events = event_bodies(n, secrets.token_hex(3))
        parts = [events[r::ROUNDS] for r in range(ROUNDS)]
        # each candidate's own events (the same sizes and sources): the ingress stores these
        candidates = {
            name: (source, event_bodies(n, secrets.token_hex(3)), server)
            for name, source, server, wanted in (("ingress_asgi", ASGI_INGRESS, "", asgi),)
            if wanted
        }
        totals: dict[str, LoadResult] = {}
        by_round: dict[str, list[float]] = {}  # each front's p50 in each round, in order
        p99_by_round: dict[str, list[float]] = {}  # and its p99
        side: dict[str, dict[str, float]] = {}
        trees = _emulator_trees(bench)
        with contextlib.ExitStack() as stack:
            ingress_server = stack.enter_context(
                Server(INGRESS, "ingress", bench.env, workers=1, threads=threads)
            )
            bare_server = stack.enter_context(
                Server(BARE, "accepted", bench.env, workers=1, threads=threads)
            )
            bare_asgi_server = stack.enter_context(
                Server(BARE_ASGI, "accepted", bench.env, workers=1, threads=threads, cwd=REPO)
            )
            served_server = stack.enter_context(
                Server(SERVED, "served", bench.env, workers=1, threads=threads)
            )
            fronts: dict[str, tuple[Server | SeedAnchor | None, bool]] = {
                "ingress": (ingress_server, False),
                "bare_202": (bare_server, False),
                "bare_202_asgi": (bare_asgi_server, False),
                "served_calls": (served_server, False),
                "direct_calls": (None, False),
                "direct_same": (None, False),
            }
            asgi_env = {**bench.env, "FUNCTION_USE_ASGI": "1"}
            for name, (source, target, in_asgi) in YARDSTICKS.items() if yardsticks else ():
                server = Server(
                    source, target, asgi_env if in_asgi else bench.env, threads=threads, cwd=REPO
                )
                fronts[name] = (stack.enter_context(server), False)
            for name, (source, _, _) in candidates.items():
                server = Server(source, "ingress", asgi_env, threads=threads, cwd=REPO)
                fronts[name] = (stack.enter_context(server), False)
            # Every front warmed at this level's concurrency before any is measured: the
            # threads, connections and pools the level uses, made before the clock starts.
            warm = WARM_PER_CONNECTION * c
            for front, _ in fronts.values():
                if isinstance(front, Server):
                    run_load(front.port, bench.requests(warm), c)
            if bench.seed is not None:
                run_load(
                    bench.seed.port, seed_requests(event_bodies(warm, secrets.token_hex(3))), c
                )
                fronts["seed"] = (bench.seed, True)
            names = list(fronts)
            for r, part in enumerate(parts):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    say(f"[1] concurrency {c}, round {r + 1}/{ROUNDS}: {name}")
                    target, as_seed = fronts[name]
                    before = _side_cpu(trees)
                    if target is None and name == "direct_same":
                        result = direct_same_calls(bench, part, c)
                    elif target is None:
                        result = direct_calls(bench, len(part), c)
                    else:
                        mine = candidates[name][1][r::ROUNDS] if name in candidates else part
                        signed = seed_requests(mine) if as_seed else bench.signed(mine)
                        result = run_load(target.port, signed, c, target)
                        if name == "ingress" and c == 1:  # one connection: answers in order
                            marked, plain = _marker_split(bench, signed, result.latencies_s)
                            split[0].extend(marked)
                            split[1].extend(plain)
                    totals[name] = totals[name] + result if name in totals else result
                    figures = result.figures()
                    by_round.setdefault(name, []).append(figures["p50_ms"])
                    p99_by_round.setdefault(name, []).append(figures["p99_ms"])
                    after = _side_cpu(trees)
                    spent = side.setdefault(name, dict.fromkeys(after, 0.0))
                    for k, v in after.items():
                        spent[k] += v - before[k]
        ingress, bare, direct = totals["ingress"], totals["bare_202"], totals["direct_calls"]
        same = totals["direct_same"]
        seed_result = totals.get("seed")
        i, b, d = ingress.figures(), bare.figures(), direct.figures()
        ds = same.figures()
        level: dict[str, Any] = {
            "concurrency": c,
            "threads": threads,
            "ingress": i,
            "bare_202": b,
            "seed": seed_result.figures() if seed_result else None,
            "direct_calls": d,
            "throughput_vs_direct": _ratio(ingress.throughput, direct.throughput),
            "p50_vs_direct": _vs(i, d, "p50_ms"),
            "p99_vs_direct": _vs(i, d, "p99_ms"),
            # the same calls with the ingress's own bodies, record and attributes
            "direct_same": ds,
            "p50_vs_direct_same": _vs(i, ds, "p50_ms"),
            "p99_vs_direct_same": _vs(i, ds, "p99_ms"),
            "throughput_vs_bare": _ratio(ingress.throughput, bare.throughput),
            "cpu_per_event_vs_bare": _vs(i, b, "cpu_ms_per_request"),
            # the bare 202 of the ingress's own server mode (not the issue's yardstick)
            "bare_202_asgi": totals["bare_202_asgi"].figures(),
            "cpu_per_event_vs_bare_asgi": _vs(
                i, totals["bare_202_asgi"].figures(), "cpu_ms_per_request"
            ),
            "_latencies": {
                "ingress": ingress.latencies_s,
                "bare_202": bare.latencies_s,
                "bare_202_asgi": totals["bare_202_asgi"].latencies_s,
                "direct_calls": direct.latencies_s,
                "direct_same": same.latencies_s,
                "seed": seed_result.latencies_s if seed_result else [],
            },
        }
        # The machine's drift within the run: each front's p50 round by round, and the
        # ingress's over the direct calls' in each round (neighbours in time, not at once).
        level["p50_ms_by_round"] = by_round
        level["p50_vs_direct_by_round"] = [
            _ratio(x, y) for x, y in zip(by_round["ingress"], by_round["direct_calls"], strict=True)
        ]
        # The same for p99: a tail one round's stall made, or one every round shares.
        level["p99_ms_by_round"] = p99_by_round
        level["p99_vs_direct_by_round"] = [
            _ratio(x, y)
            for x, y in zip(p99_by_round["ingress"], p99_by_round["direct_calls"], strict=True)
        ]
        sc = totals["served_calls"].figures()
        level["served_calls"] = sc
        level["_latencies"]["served_calls"] = totals["served_calls"].latencies_s
        # Where the ingress's figures go (not targets): the three calls inside a server
        # against the bare 202 and the same calls made in-process; the ingress against them.
        level["served_vs"] = {
            "cpu_vs_bare": _vs(sc, b, "cpu_ms_per_request"),
            "p50_vs_direct": _vs(sc, d, "p50_ms"),
            "p50_vs_direct_same": _vs(sc, ds, "p50_ms"),
            "ingress_cpu_vs_served": _vs(i, sc, "cpu_ms_per_request"),
            "ingress_p50_vs_served": _vs(i, sc, "p50_ms"),
        }
        for name in YARDSTICKS if yardsticks else ():
            y = totals[name].figures()
            level[name] = y
            level["_latencies"][name] = totals[name].latencies_s
            level[f"{name}_vs"] = {
                "p50_vs_direct": _vs(y, d, "p50_ms"),
                "p50_vs_direct_same": _vs(y, ds, "p50_ms"),
                "p99_vs_direct": _vs(y, d, "p99_ms"),
                "cpu_vs_bare": _vs(y, b, "cpu_ms_per_request"),
                "cpu_vs_served": _vs(y, sc, "cpu_ms_per_request"),
            }
            if seed_result is not None:
                level[f"{name}_vs"]["cpu_vs_seed"] = _vs(
                    y, seed_result.figures(), "cpu_ms_per_request"
                )
        for name, vs in (("ingress_asgi", "asgi_vs"),):
            if name not in totals:
                continue
            a = totals[name].figures()
            level[name] = a
            level["_latencies"][name] = totals[name].latencies_s
            level[vs] = {
                "cpu_vs_bare": _vs(a, b, "cpu_ms_per_request"),
                "cpu_vs_ingress": _vs(a, i, "cpu_ms_per_request"),
                "p50_vs_direct": _vs(a, d, "p50_ms"),
                "p99_vs_direct": _vs(a, d, "p99_ms"),
                "p50_vs_ingress": _vs(a, i, "p50_ms"),
            }
            if seed_result is not None:
                level[vs]["cpu_vs_seed"] = _vs(a, seed_result.figures(), "cpu_ms_per_request")
            level[vs]["cpu_vs_bare_asgi"] = _vs(a, level["bare_202_asgi"], "cpu_ms_per_request")
        # What each front's events cost the emulators (and the load generator) on this machine:
        # not the front's own CPU, but on two shared cores it decides a closed loop's rate,
        # and so its latency at c = 16 and 64. The seed's backends are not the emulators.
        level["side_cpu_ms_per_request"] = {
            name: {k: round(1000 * v / len(totals[name].latencies_s), 3) for k, v in spent.items()}
            for name, spent in side.items()
            if name != "seed" and totals[name].latencies_s
        }
        if split[0] and split[1]:
            level["ingress_p50_ms_by_marker"] = {
                "marker": summary(split[0])["p50_ms"],
                "no_marker": summary(split[1])["p50_ms"],
                "requests": [len(split[0]), len(split[1])],
            }
        if seed_result is not None:
            sf = seed_result.figures()
            level["cpu_per_event_vs_seed"] = _vs(i, sf, "cpu_ms_per_request")
            level["throughput_vs_seed"] = _ratio(ingress.throughput, seed_result.throughput)
            level["p50_vs_seed"] = _vs(i, sf, "p50_ms")
            level["seed_statuses_ok"] = set(seed_result.statuses) == {202}
            level["seed_cpu_vs_bare"] = _vs(sf, b, "cpu_ms_per_request")
        out["levels"].append(level)
    return out


# -- 2. verification -----------------------------------------------------------------------


#: the six schemes of DESIGN.md's table, each with its raw HMAC floor below; the providers
#: added since (issue 13) reuse these or sign in ways with no raw-HMAC floor (Ed25519, URLs)
VERIFIED_SCHEMES = ("github", "hmac-timestamp", "shopify", "slack", "standard-webhooks", "stripe")


def figure_verification(plan: Plan) -> dict[str, Any]:
    """verify() per scheme against raw hmac over the same signed bytes, two body sizes."""
    out: dict[str, Any] = {}
    now = time.time()
    for size in (1024, 64 * 1024):
        body = json.dumps({"id": "evt_1", "event_id": "Ev1", "p": "x" * size})[:size].encode()
        rows = {}
        for name in VERIFIED_SCHEMES:
            scheme = SCHEMES[name]
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


def deployed(name: str, workdir: Path) -> tuple[Path, str]:
    """Function ``name`` as it is deployed: its archive unzipped and byte-compiled as the
    buildpack compiles it, and a Python with only its requirements.txt installed, on the
    cloud runtime's version where this machine has it: the same archive (infra/archive.py)
    and venvs (tests/infra/venvs.py, cached in ``.nox/function-venvs``) as the infra and
    rehearse sessions.
    """
    import zipfile

    from infra import archive
    from tests.infra.venvs import compile_source, venv_for

    unpacked = workdir / "archives" / name
    if not unpacked.exists():
        files = archive.collect(FUNCTIONS / name, FUNCTIONS / "hookpress")
        with zipfile.ZipFile(io.BytesIO(archive.build_zip(files))) as z:
            z.extractall(unpacked)
        compile_source(unpacked)  # the buildpack's build step: the image holds the .pyc files
    say(f"[3] the virtualenv of functions/{name}/requirements.txt")
    venv = venv_for(unpacked / "requirements.txt")
    return unpacked, str(venv / "bin" / "python")


class _WordPressStandIn:
    """Answers every POST 201 ``{"id": 7}``: the far end of deliver's first request."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"id":7}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/wp-json"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _deliver_env(bench: Bench, wordpress: _WordPressStandIn) -> dict[str, str]:
    """deliver's environment in the cold-start figures: posting to ``wordpress`` with one
    of the bench's secrets as its password, push tokens unchecked (the deployed
    configuration, :func:`_deployed_env`, checks them)."""
    return {
        **bench.env,
        "HOOKPRESS_WP_BASE_URL": wordpress.url,
        "HOOKPRESS_WP_USER": "bench",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": "bench-github",
        "HOOKPRESS_PUSH_AUTH": "none",
    }


def _stored_event(bench: Bench) -> Message:
    """A published event in the bench's bucket and collection; the message the ingress
    published for it (its labels name the raw object, which deliver reads meanwhile)."""
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import event_message
    from hookpress.events import message_attributes, new_record, raw_object_name

    project = bench.emulators.project
    ident = f"cold-{secrets.token_hex(6)}"
    body = json.dumps({"id": ident, "type": "bench.cold_start", "status": "completed"}).encode()
    key = hashlib.sha256(f"stripe:{ident}".encode()).hexdigest()
    now = datetime.now(UTC)
    name = raw_object_name("stripe", key, now)
    raw = RawStore(project, "hookpress-bench", 10)
    raw.put(name, body, {"provider_event_id": ident, "scheme": "stripe"})
    record = new_record(
        source="stripe",
        scheme="stripe",
        provider_id=ident,
        received_at=now,
        raw_uri=raw.uri(name),
        body_sha256=hashlib.sha256(body).hexdigest(),
        ttl_days=30,
    )
    record["status"] = "published"
    EventRecords(project, "(default)", "events", 10).create(key, record)
    return event_message(key, "stripe", message_attributes(record))


#: what the deployed deliver checks every push's token against (the program sets both)
_PUSH_AUDIENCE = "https://hookpress-deliver-bench.a.run.app"
_PUSH_IDENTITY = "hookpress-push@bench.iam.gserviceaccount.com"


@dataclass
class _CloudStandIns:
    """What a cloud instance talks to beyond the emulators, each a local stand-in, and the
    HTTPS in front of everything the cloud serves over TLS (``tests/tls_front.py``): the
    stand-ins but the metadata server (plain HTTP in the cloud too), the emulators, and
    WordPress, by name. ``cafile`` and ``capath`` (the bundle file and the hashed CA
    directory) each trust the fronts and hold the system's CAs as well, so a context made
    from either costs what the cloud's does.
    """

    secret_manager: Any
    metadata: Any
    certs: Any
    signer: Any
    fronts: dict[str, Any]
    cafile: str
    capath: str
    #: with :meth:`far`: each front's and the metadata server's address through a proxy
    routes: dict[str, str] = field(default_factory=dict)
    proxies: list[Any] = field(default_factory=list)

    @property
    def https(self) -> dict[str, str]:
        """Each front's URL, by the name of what it stands before."""
        return {
            name: f"https://{self.routes[name]}" if name in self.routes else front.url()
            for name, front in self.fronts.items()
        }

    @property
    def metadata_host(self) -> str:
        """The metadata server's ``host:port``."""
        return self.routes.get("metadata", self.metadata.host)

    def far(self, delay_s: float) -> _CloudStandIns:
        """The same stand-ins with each of them ``delay_s`` away: what a function sends
        reaches them that much later (tests/latency_proxy.py), as over a network, so a
        round trip (a TLS handshake's, a request's) costs ``delay_s``. Closed with these."""
        from tests.latency_proxy import LatencyProxy

        targets = {name: front.url().split("://")[1] for name, front in self.fronts.items()}
        targets["metadata"] = self.metadata.host
        proxies = {
            name: LatencyProxy(address, delay_s).start() for name, address in targets.items()
        }
        self.proxies += proxies.values()
        return dataclasses.replace(
            self, routes={name: proxy.address for name, proxy in proxies.items()}, proxies=[]
        )

    def all(self) -> list[Any]:
        return [self.secret_manager, self.metadata, self.certs]

    def stop(self) -> None:
        for stand_in in self.all():
            stand_in.stop()
        for front in self.fronts.values():
            front.close()
        for proxy in self.proxies:
            proxy.close()


class _GoogleCertsStandIn:
    """Google's token-signing keys as https://www.googleapis.com/oauth2/v3/certs answers
    (a JSON Web Key Set, ``Cache-Control: max-age``), holding the bench signer's."""

    def __init__(self, jwk: dict[str, str]) -> None:
        from tests.local_http import ScriptedServer, json_reply

        answer = json_reply(200, {"keys": [jwk]}, **{"Cache-Control": "public, max-age=21600"})
        self.server = ScriptedServer(lambda _seen, _status: answer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/oauth2/v3/certs"

    @property
    def requests(self) -> list[Any]:
        return self.server.requests

    def stop(self) -> None:
        self.server.close()


def _emulated() -> dict[str, str]:
    """Each emulated API and the variable that points its client at the emulator (the
    deployed configuration reaches them over HTTPS: ``endpoint_url`` takes a scheme)."""
    from hookpress.backends._rest import _HOSTS

    return {service: variable for service, (_, variable) in _HOSTS.items() if variable}


def _cloud_stand_ins(bench: Bench, wordpress_url: str | None = None) -> _CloudStandIns:
    from hookpress.backends._rest import endpoint_url
    from hookpress.local.oidc import LocalSigner
    from tests.local_http import Authority
    from tests.metadata_server import MetadataStandIn
    from tests.secretmanager_rest import SecretManagerStandIn
    from tests.tls_front import TLSFront, trust_bundle, trust_directory

    secret_manager = SecretManagerStandIn(project=bench.emulators.project, page_size_cap=250)
    for secret, values in json.loads(Path(bench.env["HOOKPRESS_SECRETS_FILE"]).read_text()).items():
        for value in reversed(values):  # the file lists the newest first
            secret_manager.add(secret, value)
    signer = LocalSigner()
    certs = _GoogleCertsStandIn(signer.jwk)
    authority = Authority("hookpress bench CA")
    tls_dir = bench.workdir / "tls"
    upstreams = {
        "secretmanager": secret_manager.url,
        "certs": certs.url,
        **{
            variable: endpoint_url(service, bench.env)[0]
            for service, variable in _emulated().items()
        },
    }
    if wordpress_url is not None:
        upstreams["wordpress"] = wordpress_url
    fronts = {name: TLSFront(url, authority, tls_dir / name) for name, url in upstreams.items()}
    return _CloudStandIns(
        secret_manager,
        MetadataStandIn(),
        certs,
        signer,
        fronts,
        trust_bundle(authority, tls_dir / "bundle.pem"),
        trust_directory(authority, tls_dir / "cas"),
    )


def _deployed_configuration(
    bench: Bench,
    stand_ins: _CloudStandIns,
    name: str,
    function_dir: Path,
    env: dict[str, str],
    tag: str = "",
) -> tuple[Path, dict[str, str]]:
    """Function ``name`` as the program deploys it, secrets, token and push check included:
    the secrets backend is Secret Manager (a stand-in over its REST API, holding the
    bench's secrets) and, with ``K_SERVICE`` set as on Cloud Run, the token comes from a
    stand-in metadata server. deliver checks each push's OIDC token against Google's
    certificates (a stand-in serving the bench signer's). A wrapper module points the
    Secret Manager host and the certificates' URL at the stand-ins (no setting of the
    functions does: the cloud has one of each) and then loads ``main``. Every API, the
    emulators included, and WordPress are reached over TLS through the stand-ins' HTTPS
    fronts, trusting the system's CA set and the fronts' authority (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``): a first request makes its TLS contexts and handshakes as in the
    cloud. The stand-ins answer in about a millisecond; the real services' round trips
    are not in this figure, the imports and the work of the deployed code path are.
    """
    wrapper = bench.workdir / f"deployed-{name}{tag}" / "deployed_main.py"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        _stand_in_hosts(stand_ins, name)
        + f"from main import {name}  # noqa: E402,F401 - the deployed archive's entry point\n"
    )
    return wrapper, _deployed_env(stand_ins, name, function_dir, env)


def _stand_in_hosts(stand_ins: _CloudStandIns, name: str) -> str:
    """The deployed configuration's wrapper's first lines: Secret Manager's host, and for
    deliver Google's certificates' URL, pointed at the stand-ins."""
    # Only deliver checks push tokens: the ingress's wrapper does not import pushauth, which
    # the ingress itself never imports (its import would count in the ingress's cold start).
    certs = (
        "from hookpress import pushauth  # noqa: E402\n"
        f"pushauth.GOOGLE_CERTS_URL = {stand_ins.https['certs'] + '/oauth2/v3/certs'!r}\n"
        if name == "deliver"
        else ""
    )
    return (
        "from hookpress.backends import _rest\n"
        f"_rest._HOSTS['secretmanager'] = ({stand_ins.https['secretmanager']!r}, None)\n"
        f"{certs}"
    )


def _deployed_env(
    stand_ins: _CloudStandIns, name: str, function_dir: Path, env: dict[str, str]
) -> dict[str, str]:
    """The deployed configuration's environment (see :func:`_deployed_configuration`)."""
    # the secrets backend left to its default, Secret Manager, as the program leaves it;
    # push authentication left to its default, OIDC
    local = {"HOOKPRESS_SECRETS_BACKEND", "HOOKPRESS_SECRETS_FILE", "HOOKPRESS_PUSH_AUTH"}
    cloud = {k: v for k, v in env.items() if k not in local} | {
        "K_SERVICE": f"hookpress-{name}",
        "GCE_METADATA_HOST": stand_ins.metadata_host,
        "PYTHONPATH": str(function_dir),
        # every API over TLS, as in the cloud: the emulators behind their HTTPS fronts, and
        # the system's CAs with the fronts' authority trusted (tests/tls_front.py)
        **{variable: stand_ins.https[variable] for variable in _emulated().values()},
        "SSL_CERT_FILE": stand_ins.cafile,
        "SSL_CERT_DIR": stand_ins.capath,
    }
    if name == "deliver":
        cloud |= {
            "HOOKPRESS_PUSH_AUDIENCE": _PUSH_AUDIENCE,
            "HOOKPRESS_PUSH_SERVICE_ACCOUNT": _PUSH_IDENTITY,
        }
        if "wordpress" in stand_ins.https:
            cloud["HOOKPRESS_WP_BASE_URL"] = stand_ins.https["wordpress"] + "/wp-json"
    return cloud


#: a cold-start case: the function's source, target, Python, folder, environment, and what
#: builds its first request
ColdCase = tuple[Path, str, str, Path, dict[str, str], Callable[[], bytes | None]]


def _cold_starts(
    cases: Mapping[str, ColdCase], rounds: int
) -> dict[str, list[tuple[float, float, int]]]:
    """Each case started ``rounds`` times, the cases taking turns (round-robin, like figure
    1: a drift in the machine's load falls on every case alike): for each start, the
    seconds to the first answer, to listening, and the answer's status."""
    names = list(cases)
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            source, target, python, cwd, env, request = cases[name]
            first = request()  # built before the clock starts
            server = Server(source, target, env, python=python, cwd=cwd)
            started = time.perf_counter()
            listening = server.start()
            try:
                status = _first_answer(server.port, first)
                runs[name].append((time.perf_counter() - started, listening, status))
            finally:
                server.stop()
    return runs


def figure_cold_start(bench: Bench, plan: Plan, out_dir: Path) -> dict[str, Any]:
    """Process start to first answer, each function from its deployed archive and venv.

    ingress: a signed event (202); deliver: a push of a stored event, delivered to a
    stand-in WordPress (201); hello: functions-framework's bare hello, same Python.
    Then once more each with ``-X importtime``: every module imported before the
    first answer, kept in ``importtime/<name>.txt`` and summed per package.
    """
    wordpress = _WordPressStandIn()
    ingress_dir, ingress_python = deployed("ingress", bench.workdir)
    deliver_dir, deliver_python = deployed("deliver", bench.workdir)
    deliver_env = _deliver_env(bench, wordpress)
    stand_ins = _cloud_stand_ins(bench, wordpress.url)
    cloud_source, cloud_env = _deployed_configuration(
        bench, stand_ins, "ingress", ingress_dir, bench.env
    )
    deliver_source, deliver_cloud_env = _deployed_configuration(
        bench, stand_ins, "deliver", deliver_dir, deliver_env
    )
    cases: dict[str, ColdCase] = {
        "hello": (BARE, "hello", ingress_python, ingress_dir, bench.env, lambda: None),
        "ingress": (
            ingress_dir / "main.py",
            "ingress",
            ingress_python,
            ingress_dir,
            bench.env,
            lambda: bench.requests(1)[0],
        ),
        "deliver": (
            deliver_dir / "main.py",
            "deliver",
            deliver_python,
            deliver_dir,
            deliver_env,
            lambda: _push_request(_stored_event(bench)),
        ),
        "ingress_cloud": (
            cloud_source,
            "ingress",
            ingress_python,
            ingress_dir,
            cloud_env,
            lambda: bench.requests(1)[0],
        ),
        "deliver_cloud": (
            deliver_source,
            "deliver",
            deliver_python,
            deliver_dir,
            deliver_cloud_env,
            lambda: _push_request(
                _stored_event(bench),
                token=stand_ins.signer.token(_PUSH_AUDIENCE, _PUSH_IDENTITY),
            ),
        ),
    }
    out: dict[str, Any] = {}
    imports = out_dir / "importtime"
    imports.mkdir(parents=True, exist_ok=True)
    names = list(cases)
    logged: dict[str, list[tuple[float, dict[str, Any], str]]] = {name: [] for name in names}
    try:
        runs = _cold_starts(cases, plan.cold_starts)
        # -X importtime three times each; the run with the median total is kept
        for attempt in range(3):
            for name in names:
                source, target, python, cwd, env, request = cases[name]
                log = bench.workdir / f"importtime-{name}-{attempt}.txt"
                first = request()
                server = Server(
                    source,
                    target,
                    {**env, "PYTHONPROFILEIMPORTTIME": "1"},
                    python=python,
                    cwd=cwd,
                    stderr=log,
                )
                server.start()
                try:
                    _first_answer(server.port, first)
                finally:
                    server.stop()
                summary = import_summary(log)
                logged[name].append((summary["total_ms"], summary, log.read_text(errors="replace")))
    finally:
        wordpress.stop()
        stand_ins.stop()
    if not all(stand_in.requests for stand_in in stand_ins.all()):
        # the deployed configurations must have read their secrets, tokens and certificates
        raise RuntimeError("the deployed configuration never asked the stand-ins")
    for name in names:
        times = [t for t, _, _ in runs[name]]
        kept = sorted(logged[name], key=lambda entry: entry[0])
        (imports / f"{name}.txt").write_text(kept[1][2])
        out[name] = {
            "seconds": round(statistics.median(times), 3),
            "runs_s": [round(t, 3) for t in times],
            # process start to accepting connections; the rest is the first request
            "listening_s": [round(listening, 3) for _, listening, _ in runs[name]],
            "statuses": [status for _, _, status in runs[name]],
            "imports": {**kept[1][1], "totals_ms": [entry[0] for entry in kept]},
        }
    hello = out["hello"]["seconds"]
    for name in names[1:]:
        out[name]["vs_hello"] = round(out[name]["seconds"] / hello, 3)
    version = subprocess.run(  # noqa: S603 - fixed argv
        [ingress_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    out["python"] = f"Python {version.stdout.strip()}"
    return out


#: ``--only network``: how far each service is from the functions (one way, what they send)
NETWORK_DELAY_MS = 10.0


def figure_network(bench: Bench, plan: Plan, delay_s: float) -> dict[str, Any]:
    """The first request of each function in the deployed configuration, with every
    service it calls (the emulators, Secret Manager, the metadata server, Google's keys,
    WordPress) as near as in figure 3 and ``delay_s`` away (:meth:`_CloudStandIns.far`).

    Figure 3's stand-ins answer in about a millisecond, so a first request that waits on
    the network one thing after another costs little more there than one that overlaps
    the waits. In the cloud every new connection's handshake and every call is a network
    round trip. Here each costs ``delay_s``, and the first request shows how many it waits
    for in turn. Process start to first answer, and the part after the server listened
    (the first request), ``plan.cold_starts`` starts a case, taking turns.
    """
    wordpress = _WordPressStandIn()
    ingress_dir, ingress_python = deployed("ingress", bench.workdir)
    deliver_dir, deliver_python = deployed("deliver", bench.workdir)
    deliver_env = _deliver_env(bench, wordpress)
    stand_ins = _cloud_stand_ins(bench, wordpress.url)
    cases: dict[str, ColdCase] = {}
    try:
        for distance, view in (("near", stand_ins), ("far", stand_ins.far(delay_s))):
            for name, function_dir, python, env in (
                ("ingress", ingress_dir, ingress_python, bench.env),
                ("deliver", deliver_dir, deliver_python, deliver_env),
            ):
                source, cloud_env = _deployed_configuration(
                    bench, view, name, function_dir, env, tag=f"-{distance}"
                )
                first: Callable[[], bytes] = (
                    (lambda: bench.requests(1)[0])
                    if name == "ingress"
                    else (
                        lambda: _push_request(
                            _stored_event(bench),
                            token=stand_ins.signer.token(_PUSH_AUDIENCE, _PUSH_IDENTITY),
                        )
                    )
                )
                cases[f"{name}_{distance}"] = (source, name, python, function_dir, cloud_env, first)
        runs = _cold_starts(cases, plan.cold_starts)
    finally:
        wordpress.stop()
        stand_ins.stop()
    out: dict[str, Any] = {"delay_ms": round(delay_s * 1000, 1)}
    for name in cases:
        out[name] = {
            "seconds": round(statistics.median(t for t, _, _ in runs[name]), 3),
            "first_request_ms": round(
                statistics.median((t - listening) * 1000 for t, listening, _ in runs[name]), 1
            ),
            "runs_s": [round(t, 3) for t, _, _ in runs[name]],
            "listening_s": [round(listening, 3) for _, listening, _ in runs[name]],
            "statuses": [status for _, _, status in runs[name]],
        }
    for name in ("ingress", "deliver"):
        near, far = out[f"{name}_near"], out[f"{name}_far"]
        # how many of delay_s the first request waited for, one after another
        out[f"{name}_round_trips_in_turn"] = round(
            (far["first_request_ms"] - near["first_request_ms"]) / (delay_s * 1000), 1
        )
    return out


def figure_distance(bench: Bench, plan: Plan, delay_s: float, c: int = 1) -> dict[str, Any]:
    """Figure 1's p50 and p99 at concurrency ``c`` with the emulators as near as there and
    ``delay_s`` away.

    Figure 1's emulators answer from this machine in about a millisecond: the three calls
    take 3-7 ms, so the milliseconds a server adds weigh there as they never do where the
    services are a network away. Here the ingress (figure 1's configuration), the three
    calls served alone (bench/served_calls.py) and the same calls made in-process
    (:func:`direct_same_calls`) run twice over: with the emulators near, and with each
    behind tests/latency_proxy.py (in a process of its own), ``delay_s`` a round trip, as
    a Google API is a network away from an instance. The six fronts take turns in
    ``ROUNDS`` parts (figure 1's way), ``c`` requests at a time, each front warmed at ``c``
    first as figure 1 warms them. What the ingress adds over the direct calls, in
    milliseconds, is its own and the server's; whether it is the same near and far says
    whether it is a share of the calls or a fixed cost. At ``c`` = 16 it also tells whether
    point 3's p99 bound, missed with the emulators near in some runs, holds where every call
    is a network round trip.
    """
    n = plan.requests[c]
    threads = max(8, c)  # as figure 1 serves each level
    variables = list(_emulated().values())
    emulators = [bench.env[variable].rpartition("://") for variable in variables]
    # The proxies in a process of their own: in this one their threads would hold the
    # interpreter's lock that the direct calls, timed here, need.
    proxies = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "tests.latency_proxy", str(delay_s)]
        + [address for _, _, address in emulators],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    out, into = proxies.stdout, proxies.stdin
    if out is None or into is None:  # both PIPE: never
        raise RuntimeError("the proxies' process has no pipes")
    totals: dict[str, LoadResult] = {}
    try:
        far_env = dict(bench.env)
        for variable, (scheme, _, _) in zip(variables, emulators, strict=True):
            address = out.readline().strip()
            if not address:
                raise RuntimeError("the latency proxies did not start")
            far_env[variable] = f"{scheme}://{address}" if scheme else address
        envs = {"near": bench.env, "far": far_env}
        events = {
            f"{front}_{distance}": event_bodies(n, secrets.token_hex(3))
            for front in ("ingress", "direct")
            for distance in envs
        }  # each its own events: an ingress given another's would answer 200, a duplicate
        with contextlib.ExitStack() as stack:
            servers = {
                f"{front}_{distance}": stack.enter_context(
                    Server(source, target, env, workers=1, threads=threads)
                )
                for distance, env in envs.items()
                for front, source, target in (
                    ("ingress", INGRESS, "ingress"),
                    ("served_calls", SERVED, "served"),
                )
            }
            for server in servers.values():  # its threads, connections and first calls
                run_load(server.port, bench.requests(WARM_PER_CONNECTION * c), c)
            names = [*servers, "direct_near", "direct_far"]
            for r in range(ROUNDS):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    say(
                        f"[distance] c = {c}, {delay_s * 1000:g} ms, round {r + 1}/{ROUNDS}: {name}"
                    )
                    front, distance = name.rsplit("_", 1)
                    part = events.get(name, events[f"ingress_{distance}"])[r::ROUNDS]
                    if front == "direct":
                        result = direct_same_calls(bench, part, c, envs[distance])
                    else:
                        result = run_load(servers[name].port, bench.signed(part), c)
                    totals[name] = totals[name] + result if name in totals else result
    finally:
        into.close()  # the proxies' process ends
        try:
            proxies.wait(10)
        except subprocess.TimeoutExpired:
            proxies.kill()
    for name, result in totals.items():
        if set(result.statuses) != {202}:  # a 200 is a duplicate: not the three calls
            raise RuntimeError(f"{name}: not every request was accepted: {result.statuses}")
    out: dict[str, Any] = {"delay_ms": round(delay_s * 1000, 1), "concurrency": c, "requests": n}
    for distance in envs:
        figures = {
            front: totals[f"{front}_{distance}"].figures()
            for front in ("ingress", "served_calls", "direct")
        }
        direct = figures["direct"]
        out[distance] = {
            **figures,
            "p50_vs_direct": _vs(figures["ingress"], direct, "p50_ms"),
            "p99_vs_direct": _vs(figures["ingress"], direct, "p99_ms"),
            "served_p50_vs_direct": _vs(figures["served_calls"], direct, "p50_ms"),
            "served_p99_vs_direct": _vs(figures["served_calls"], direct, "p99_ms"),
            "p50_over_direct_ms": round(figures["ingress"]["p50_ms"] - direct["p50_ms"], 2),
            "served_p50_over_direct_ms": round(
                figures["served_calls"]["p50_ms"] - direct["p50_ms"], 2
            ),
        }
    return out


def figure_paired(bench: Bench, plan: Plan) -> dict[str, Any]:
    """Figure 1's p50 at c = 1 with the fronts taking turns one request at a time.

    Figure 1 cuts a level's events into ``ROUNDS`` parts and the fronts take turns part by
    part, each part seconds long; at c = 1 the emulators' speed drifts within that time (run
    31: a front's p50 moved 3.4-8.3 ms from round to round in one run), so one part's p50
    is its minutes' as much as its front's. Here the ingress, the three calls served alone
    (bench/served_calls.py) and the same calls made in-process (:func:`direct_same_calls`'s
    :class:`~bench.served_calls.Floor`) take turns request by request, the order rotating
    each turn: each front's n-th request is a few milliseconds from the others' n-th. The
    servers are asked over one kept-alive connection each by a blocking client
    (:class:`~bench._load.BlockingConnection`), so no client event loop wakes between an
    answer and the clock. Besides each front's p50: the median of the turns' differences,
    ingress less direct (a paired estimate of what the ingress adds), and the p50 ratio in
    each tenth of the turns (whether it holds through the run).
    """
    from bench.served_calls import Floor
    from hookpress.settings import IngressSettings

    n = 3 * plan.requests[1]
    floor = Floor(IngressSettings.from_env(bench.env))
    sources = sorted(bench.secrets)  # the rotation of sign_requests and direct_same_calls
    tag = secrets.token_hex(3)
    events = {name: event_bodies(n, secrets.token_hex(3)) for name in ("ingress", "served_calls")}
    direct_events = event_bodies(n + 16, tag)
    names = ["ingress", "served_calls", "direct"]
    latencies: dict[str, list[float]] = {name: [] for name in names}
    statuses: dict[str, dict[int, int]] = {name: {} for name in names[:2]}

    def direct(i: int) -> float:
        ident, body = direct_events[i]
        source = floor.settings.sources[sources[i % len(sources)]]
        started = time.perf_counter()
        floor.event(source, f"{ident}-{tag}", body)
        return time.perf_counter() - started

    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(Server(source, target, bench.env, workers=1, threads=8))
            for name, source, target in (
                ("ingress", INGRESS, "ingress"),
                ("served_calls", SERVED, "served"),
            )
        }
        for server in servers.values():
            run_load(server.port, bench.requests(8), 1)  # its connections and first calls
        for i in range(16):
            direct(n + i)  # the floor's clients and connections
        connections = {name: BlockingConnection(server.port) for name, server in servers.items()}
        stack.callback(lambda: [c.close() for c in connections.values()])
        signed = {name: bench.signed(events[name]) for name in servers}
        for i in range(n):
            if i % 100 == 0:
                say(f"[paired] c = 1, turn {i + 1}/{n}")
            for name in names[i % 3 :] + names[: i % 3]:
                if name == "direct":
                    latencies[name].append(direct(i))
                    continue
                status, took = connections[name].exchange(signed[name][i])
                latencies[name].append(took)
                statuses[name][status] = statuses[name].get(status, 0) + 1
    for name, seen in statuses.items():
        if set(seen) != {202}:  # a 200 is a duplicate: not the three calls
            raise RuntimeError(f"{name}: not every request was accepted: {seen}")
    figures = {name: summary(latencies[name]) for name in names}
    tenth = n // 10
    return {
        "turns": n,
        **figures,
        "p50_vs_direct": _vs(figures["ingress"], figures["direct"], "p50_ms"),
        "served_p50_vs_direct": _vs(figures["served_calls"], figures["direct"], "p50_ms"),
        "p50_over_direct_ms": round(figures["ingress"]["p50_ms"] - figures["direct"]["p50_ms"], 3),
        "paired_over_direct_ms": round(
            1000
            * statistics.median(
                a - b for a, b in zip(latencies["ingress"], latencies["direct"], strict=True)
            ),
            3,
        ),
        "p50_vs_direct_by_tenth": [
            _ratio(
                statistics.median(latencies["ingress"][k : k + tenth]),
                statistics.median(latencies["direct"][k : k + tenth]),
            )
            for k in range(0, tenth * 10, tenth)
        ],
    }


def figure_timeline(bench: Bench) -> dict[str, Any]:
    """Where a c = 1 request's time and a cold start's go, by stage (bench/timeline.py):
    the cold start in both of figure 3's configurations."""
    function_dir, python = deployed("ingress", bench.workdir)
    out = timeline.measure(function_dir, python, bench.env, bench.requests, bench.workdir)
    stand_ins = _cloud_stand_ins(bench)
    try:
        out["cold_start_deployed"] = timeline.cold_start(
            function_dir,
            python,
            _deployed_env(stand_ins, "ingress", function_dir, bench.env),
            bench.requests,
            bench.workdir,
            prelude=_stand_in_hosts(stand_ins, "ingress"),
        )
    finally:
        stand_ins.stop()
    return out


def figure_tail(bench: Bench) -> dict[str, Any]:
    """Where a request's time goes at c = 16, in the slowest 5 % too (bench/timeline.py
    ``tail``): point 3's p99 bound, stage by stage."""
    function_dir, python = deployed("ingress", bench.workdir)
    return timeline.tail(function_dir, python, bench.env, bench.requests, bench.workdir)


def import_summary(log: Path, top: int = 12) -> dict[str, Any]:
    """Total import time and the packages that took most (self time, summed per package)."""
    by_package: dict[str, int] = {}
    modules = 0
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        try:
            self_us, _cumulative, name = (part.strip() for part in line[12:].split("|"))
            parts = name.split(".")
            depth = 3 if parts[:2] == ["google", "cloud"] else 2 if parts[0] == "google" else 1
            package = ".".join(parts[:depth])
            by_package[package] = by_package.get(package, 0) + int(self_us)
        except ValueError:
            continue
        modules += 1
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])
    return {
        "modules": modules,
        "total_ms": round(sum(by_package.values()) / 1000, 1),
        "by_package_ms": {k: round(v / 1000, 1) for k, v in ranked[:top]},
    }


def _push_request(message: Message, token: str | None = None) -> bytes:
    """A Pub/Sub push of ``message``: as the emulator sends it (no token, no
    deliveryAttempt), or with ``token`` as Pub/Sub sends it in the cloud to a subscription
    with push authentication and a dead-letter policy (``Authorization: Bearer``,
    ``deliveryAttempt``: https://cloud.google.com/pubsub/docs/push#receive_push)."""
    push: dict[str, Any] = {
        "message": {**message, "messageId": "1"},
        "subscription": "projects/p/subscriptions/s",
    }
    auth = ""
    if token is not None:
        push["deliveryAttempt"] = 1
        auth = f"Authorization: Bearer {token}\r\n"
    envelope = json.dumps(push).encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(envelope)}"
    )
    return head.encode() + b"\r\n\r\n" + envelope


SWEEP_ROUNDS = 4  # forward, backward, forward, backward: a steady drift falls on all alike


def figure_sweep(bench: Bench, plan: Plan) -> list[dict[str, Any]]:
    """WORKERS × THREADS at concurrency 64 (scaling is the THREADS=16 column).

    Like figure 1, the configurations take turns with all their servers up, in
    ``SWEEP_ROUNDS`` parts, the order reversed every other round. Run one after
    the other, the sweep measured the emulators slowing as their stores grow
    over the run (throughput fell in the order the configurations ran while the
    CPU per event stayed flat), and chose whichever configuration ran first.
    """
    totals: dict[tuple[int, int], LoadResult] = {}
    with contextlib.ExitStack() as stack:
        servers: dict[tuple[int, int], Server] = {}
        for workers, threads in SWEEP:
            server = stack.enter_context(
                Server(INGRESS, "ingress", bench.env, workers=workers, threads=threads)
            )
            run_load(server.port, bench.requests(max(8, workers * 4)), 8)  # warm every worker
            servers[(workers, threads)] = server
        part = max(1, plan.sweep_requests // SWEEP_ROUNDS)
        for r in range(SWEEP_ROUNDS):
            for config in SWEEP if r % 2 == 0 else SWEEP[::-1]:
                say(f"[3/5] sweep workers={config[0]} threads={config[1]}, round {r + 1}")
                server = servers[config]
                result = run_load(server.port, bench.requests(part), 64, server)
                totals[config] = totals[config] + result if config in totals else result
    return [{"workers": w, "threads": t, **totals[(w, t)].figures()} for w, t in SWEEP]


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


#: Deliver as deployed, one instance of it: ``deliverConcurrency`` (hookpress.lanes,
#: default 1) is THREADS, with one worker (infra/env.py), so an instance is gunicorn's sync
#: worker serving one push at a time (gunicorn runs its threaded worker only for
#: THREADS > 1). The bare POST goes out one at a time too.
DRAIN_THREADS = DELIVER_CONCURRENCY


def figure_drain(bench: Bench, plan: Plan, profile: Path | None = None) -> dict[str, Any]:
    """Events per second into WordPress through the pipeline vs straight to the plugin.

    Also deliver's own CPU (its gunicorn tree) per delivered event against a
    bare httpx POST of the same records to the same WordPress URL, measured
    in a process of its own (bench/_wp_post.py). With ``profile`` (a folder),
    py-spy samples deliver during the pipeline part (``deliver.svg``, the
    self time by area in ``deliver.json``); its CPU figure is then not comparable.
    """
    from google.cloud import firestore

    from hookpress.deliver.transforms import Event, build_record
    from hookpress.local.stack import LocalStack, StackOptions

    n = plan.drain_events
    options = StackOptions(
        project="hookpress-bench-drain",
        breaker_threshold=1000,
        sources=dict(SCHEME_SOURCES),
        threads=DRAIN_THREADS,
        wp_cap=DRAIN_THREADS,  # one instance
        deliver_concurrency=DRAIN_THREADS,
    )
    stack = LocalStack(bench.workdir / "drain", options, emulators=bench.emulators).start()
    try:
        site = stack.site
        concurrency = options.deliver_concurrency  # pushes at once, one instance
        if stack.ingress is None or stack.deliver is None or stack.deliver.pid is None:
            raise RuntimeError("the stack is not running")
        deliver = _Tree(stack.deliver.pid)
        schemes = dict(options.sources)
        keys = {s: v[0] for s, v in stack.source_secrets.items()}
        tag = secrets.token_hex(3)
        events = event_bodies(n, tag)
        requests = sign_requests(events, keys, schemes)
        db = firestore.Client(project=options.project)
        say(f"[4] drain: {n} events through the pipeline")
        sampling = contextlib.ExitStack()
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            folded = bench.workdir / "deliver.folded"
            sampling.enter_context(_profile.sampled(deliver.pid, profile / "deliver.svg", folded))
        deliver_cpu = deliver.cpu_s()
        started = time.perf_counter()
        run_load(stack.ingress.port, requests, 16)
        sent = time.perf_counter() - started
        sources = sorted(keys)
        event_keys = [
            hashlib.sha256(f"{sources[i % len(sources)]}:{ident}".encode()).hexdigest()
            for i, (ident, _) in enumerate(events)
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
        deliver_cpu = deliver.cpu_s() - deliver_cpu
        sampling.close()
        if profile is not None:
            write_json(profile / "deliver.json", _profile.summarize(folded, top=40))

        say(f"[4] drain: {n} records straight to the plugin, {concurrency} at a time")
        # The records deliver built, under new external ids (a fresh write, not a replay).
        now = datetime.now(UTC)
        records = [
            build_record(
                Event(
                    source=sources[i % len(sources)],
                    scheme=schemes[sources[i % len(sources)]],
                    provider_event_id=f"direct-{ident}",
                    event_type=None,
                    payload=json.loads(body),
                    received_at=now,
                )
            )
            for i, (ident, body) in enumerate(events)
        ]
        job = {
            "url": f"{stack.deliver_env()['HOOKPRESS_WP_BASE_URL']}/ai-guy/v1/ingest",
            "user": site.ingest_user,
            "password": site.app_password,
            "concurrency": concurrency,
            "records": records,
        }
        posted = subprocess.run(
            [sys.executable, "-m", "bench._wp_post"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        bare = json.loads(posted.stdout)
    finally:
        stack.stop()
    pushes = _push_outcomes(stack.workdir / "logs" / "deliver.log")
    pipeline_rate = delivered / pipeline_s
    direct_rate = bare["posts"] / bare["seconds"]
    deliver_ms = 1000 * deliver_cpu / max(delivered, 1)
    post_ms = 1000 * bare["cpu_s"] / max(bare["posts"], 1)
    return {
        "events": n,
        "concurrency": concurrency,
        "pipeline_delivered": delivered,
        "pipeline_send_s": round(sent, 2),
        "pipeline_s": round(pipeline_s, 2),
        "pipeline_per_s": round(pipeline_rate, 1),
        "direct_s": round(bare["seconds"], 2),
        "direct_per_s": round(direct_rate, 1),
        "direct_statuses": bare["statuses"],
        "ratio": round(pipeline_rate / direct_rate, 3),
        "deliver_cpu_ms_per_event": round(deliver_ms, 3),
        "bare_post_cpu_ms_per_event": round(post_ms, 3),
        "deliver_cpu_vs_bare_post": _ratio(deliver_ms, post_ms),
        "pushes": pushes,
    }


def _push_outcomes(log: Path) -> dict[str, int]:
    """How many pushes deliver answered, by outcome (its log lines): a push sent again while
    an earlier one waited shows as more pushes than events (its CPU is in the figure)."""
    counts: dict[str, int] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and str(entry.get("message", "")).startswith("deliver "):
            outcome = entry.get("outcome")
            if isinstance(outcome, str):
                counts[outcome] = counts.get(outcome, 0) + 1
    return dict(sorted(counts.items()))


# -- where the time goes ----------------------------------------------------------------------


def profile_ingress(bench: Bench, plan: Plan, out_dir: Path) -> dict[str, Any]:
    """A py-spy flame graph of the ingress per concurrency, and its self time by area."""
    name, source, env = "ingress", INGRESS, bench.env
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for c in CONCURRENCY:
        say(f"[profile] concurrency {c}: {name} under py-spy")
        with Server(source, "ingress", env, workers=1, threads=max(8, c), cwd=REPO) as server:
            run_load(server.port, bench.requests(16), 8)
            svg = out_dir / f"{name}-c{c}.svg"
            folded = bench.workdir / f"{name}-c{c}.folded"
            requests = bench.requests(plan.requests[c])
            with _profile.sampled(server.pid, svg, folded):
                result = run_load(server.port, requests, c, server)
        summary[f"c{c}"] = {
            "load": result.figures(),
            **_profile.summarize(folded, keep=_profile.ours),
            "all_threads": _profile.summarize(folded)["self_by_area"],
        }
    write_json(out_dir / "profile.json", summary)
    write_markdown(out_dir / "profile.md", profile_markdown(summary, name))
    return summary


def perf_c1(bench: Bench, out_dir: Path, n: int = 3000) -> dict[str, Any]:
    """True CPU by function at c = 1 (bench/_perf.py): perf on the ingress as deployed and on
    the three calls served by the same server, from the same archive and virtualenv."""
    unpacked, python = deployed("ingress", bench.workdir)
    env = {**bench.env, "PYTHONPERFSUPPORT": "1"}  # Python 3.12 names its functions to perf
    served_env = {**env, "PYTHONPATH": f"{REPO}{os.pathsep}{unpacked}"}
    servers = {
        "ingress": Server(unpacked / "main.py", "ingress", env, python=python, cwd=unpacked),
        "served_calls": Server(SERVED, "served", served_env, python=python, cwd=REPO),
    }

    def recording(server: Server) -> Callable[[Path], int]:
        def run(data: Path) -> int:
            requests = bench.requests(n)
            say(f"[perf] {n} requests, one at a time, under perf")
            with _perf.recorded([p.pid for p in server.tree()], data):
                statuses = run_load(server.port, requests, 1, server).statuses
            if set(statuses) != {202}:
                raise RuntimeError(f"not every request was accepted: {statuses}")
            return n

        return run

    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
            run_load(server.port, bench.requests(64), 4)  # its connections and first calls
        return _perf.compare(
            {name: recording(server) for name, server in servers.items()}, out_dir, bench.workdir
        )


def profile_markdown(summary: dict[str, Any], name: str = "ingress") -> str:
    """The self-time tables, one section per concurrency."""
    title, what, flags = "Where the ingress's time goes", "the ingress", "--profile"
    lines = [
        f"# {title}",
        "",
        f"`nox -s bench -- {flags}`: py-spy (200 Hz, the thread holding the GIL) on",
        f"{what} while it takes the benchmark's load. Flame graphs: `{name}-c<N>.svg`.",
        "`request stacks` are the samples whose stack passes through hookpress code (a",
        "request's own work, and thread-pool work it submitted); `all threads` counts every",
        "sample (the server loop, client-library background threads too).",
        "",
    ]
    for level, data in summary.items():
        load = data["load"]
        lines += [
            f"## {level.replace('c', 'concurrency ')}",
            "",
            f"{load['requests']} requests, {load['throughput_rps']} rps, "
            f"p50 {load['p50_ms']} ms, CPU {load['cpu_ms_per_request']} ms per request "
            f"(under the profiler), {data['samples']} request samples. "
            f"[flame graph]({name}-{level}.svg)",
            "",
            "| self time by area | request stacks % | all threads % |",
            "|---|---|---|",
            *(
                f"| {area} | {pct} | {data['all_threads'].get(area, 0.0)} |"
                for area, pct in data["self_by_area"].items()
            ),
            "",
            "| self time by function (request stacks) | % |",
            "|---|---|",
            *(f"| `{fn}` | {pct} |" for fn, pct in data["self_by_function"].items()),
            "",
        ]
    return "\n".join(lines)


# -- output -----------------------------------------------------------------------------------


_FRONTS = ("ingress", "seed", "bare_202", "served_calls", "direct_calls", "direct_same")
_LABELS = {
    "ingress": "hookpress ingress",
    "seed": "seed's design",
    "bare_202": "bare 202",
    "served_calls": "the three calls served (bench/served_calls.py)",
    "direct_calls": "direct backend calls",
    "direct_same": "direct calls, the ingress's bodies",
}
_COLORS = {
    "ingress": "tab:blue",
    "seed": "tab:green",
    "bare_202": "tab:gray",
    "served_calls": "tab:purple",
    "direct_calls": "tab:orange",
    "direct_same": "tab:brown",
}


def plot(results: dict[str, Any], path: Path) -> None:
    """Latency, throughput and CPU per event per concurrency, each front side by side; scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["ingress"]["levels"]
    names = [n for n in _FRONTS if all(lv.get(n) for lv in levels)]
    step = len(names) + 1
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.4))
    ticks = (
        [i * step + (len(names) - 1) / 2 for i in range(len(levels))],
        [f"c={lv['concurrency']}" for lv in levels],
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLORS[n]) for n in names]
    labels = [_LABELS[n] for n in names]

    ax = axes[0]
    positions, data, cols = [], [], []
    for i, level in enumerate(levels):
        for j, name in enumerate(names):
            positions.append(i * step + j)
            data.append([x * 1000 for x in level["_latencies"][name]])
            cols.append(_COLORS[name])
    parts = ax.boxplot(data, positions=positions, widths=0.8, showfliers=False, patch_artist=True)
    for patch, color in zip(parts["boxes"], cols, strict=True):
        patch.set_facecolor(color)
    ax.set_xticks(*ticks)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency (box: p25–p75, whiskers 1.5 IQR)")
    # One legend for the three panels, below them: inside, it hid the bars.
    fig.legend(handles, labels, loc="lower center", ncol=len(names), fontsize=9)

    for ax, key, title, ylabel in (
        (axes[1], "throughput_rps", "Throughput per concurrency", "requests per second"),
        (
            axes[2],
            "cpu_ms_per_request",
            "CPU per event: the serving process tree\n(direct calls: the calling threads)",
            "CPU ms per event",
        ),
    ):
        shown = [n for n in names if n != "direct_calls" or key != "cpu_ms_per_request"]
        for j, name in enumerate(shown):
            ax.bar(
                [i * step + j for i in range(len(levels))],
                [lv[name][key] for lv in levels],
                0.9,
                label=_LABELS[name],
                color=_COLORS[name],
            )
        ax.set_xticks(*ticks)
        ax.set_ylabel(ylabel)
        ax.set_title(title)

    ax = axes[3]
    scaling = [r for r in results.get("sweep", []) if r["threads"] == 16]
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
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _verdict(value: float, target: float, higher_is_better: bool) -> str:
    met = value >= target if higher_is_better else value <= target
    if met:
        return "met"
    gap = (target - value) / target if higher_is_better else (value - target) / target
    return f"missed by {gap:.0%}"


def _check(value: float | None, target: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value} ({_verdict(value, target, higher_is_better)})"


def markdown(results: dict[str, Any], command: str) -> str:
    """The tables."""
    levels = results["ingress"]["levels"]
    lines = ["# Benchmark", "", f"Command: `{command}`", ""]
    lines += [
        "## 1. Ingress against its floors and the seed's design",
        "",
        "The same signed events at each concurrency to each front; CPU is the serving",
        f"process tree's only (gunicorn master + workers; the seed's {results['ingress']['seed_workers']} sync "
        "workers, not its PostgreSQL or Redis; not the emulators).",
        "",
        "| c | front | rps | p50 ms | p99 ms | CPU ms / event | answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        for name in _FRONTS:
            f = lv.get(name)
            if not f:
                continue
            cpu = f["cpu_ms_per_request"] if name != "direct_calls" else "—"
            answers = ", ".join(f"{k}: {v}" for k, v in f["statuses"].items())
            lines.append(
                f"| {lv['concurrency']} | {_LABELS[name]} | {f['throughput_rps']} | {f['p50_ms']} "
                f"| {f['p99_ms']} | {cpu} | {answers} |"
            )
    lines += [
        "",
        "| c | CPU vs seed (≤ 1.0) | CPU vs bare 202 (≤ 4) | p50 vs direct (≤ 1.2 at c=1) "
        "| p99 vs direct (≤ 1.5 at c=16) | p50 / p99 vs the same calls | rps vs seed "
        "| rps vs direct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        c = lv["concurrency"]
        lines.append(
            f"| {c} | {_check(lv.get('cpu_per_event_vs_seed'), 1.0)} "
            f"| {_check(lv['cpu_per_event_vs_bare'], 4.0)} "
            f"| {_check(lv['p50_vs_direct'], 1.2) if c == 1 else lv['p50_vs_direct']} "
            f"| {_check(lv['p99_vs_direct'], 1.5) if c == 16 else lv['p99_vs_direct']} "
            f"| {lv.get('p50_vs_direct_same', '—')} / {lv.get('p99_vs_direct_same', '—')} "
            f"| {lv.get('throughput_vs_seed', '—')} | {lv['throughput_vs_direct']} |"
        )
    lines += [
        "",
        "Direct backend calls: the three calls from the benchmark's process with a 600-byte body, "
        "one metadata entry, a 4-field record and minimal attributes (the floor of runs 1–6); "
        "the ingress's bodies: the same three calls with the event's body, the ingress's GCS "
        "metadata, its full record and its message attributes (`direct_same_calls`; its CPU "
        "is the calling threads' own, no server).",
    ]
    if all("served_vs" in lv for lv in levels):
        lines += [
            "",
            "Where the figures go (not targets): the three calls served by the same server "
            "(`bench/served_calls.py`: no verification, parsing, marker, claim or log line) "
            "against the bare 202 and the in-process calls; the ingress against them; the "
            "seed's design against the bare 202.",
            "",
            "| c | served calls CPU ÷ bare 202 | served calls p50 ÷ direct (÷ the same calls) "
            "| ingress CPU ÷ served calls | ingress p50 ÷ served calls | seed CPU ÷ bare 202 |",
            "|---|---|---|---|---|---|",
        ]
        for lv in levels:
            sv = lv["served_vs"]
            lines.append(
                f"| {lv['concurrency']} | {sv['cpu_vs_bare']} | {sv['p50_vs_direct']} "
                f"({sv['p50_vs_direct_same']}) | {sv['ingress_cpu_vs_served']} "
                f"| {sv['ingress_p50_vs_served']} | {lv.get('seed_cpu_vs_bare', '—')} |"
            )
        lines.append("")
    queued = [
        (lv["concurrency"], name, lv[name])
        for lv in levels
        for name in _FRONTS
        if isinstance(lv.get(name), dict) and "queued_ms_per_request" in lv[name]
    ]
    if queued:
        lines += [
            "",
            "Waiting for a core (not targets; per event): how long the front's threads were "
            "runnable but waited for a CPU, and how many times they were put on one "
            "(`/proc/…/task/*/schedstat`, summed over the serving threads; for the in-process "
            "calls, the calling threads'). Every wake-up of a thread that waits on the network "
            "can queue behind the emulators on this machine's two cores, and costs CPU."
            + wake_probe.sentence(results["machine"].get("wake_round_trips", [])),
            "",
            "| c | front | waiting for a core, ms | times scheduled | CPU ms |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c} | {_LABELS[name]} | {f['queued_ms_per_request']} "
            f"| {f['scheduled_per_request']} | {f['cpu_ms_per_request']} |"
            for c, name, f in queued
        ]
    if all("side_cpu_ms_per_request" in lv for lv in levels):
        lines += [
            "",
            "What each front's events cost besides the front's own CPU (not targets; ms per "
            "event): each emulator's process tree, and the benchmark's own process (the load "
            "generator; for the direct floors, their calls too). On this machine it all shares "
            "two cores, so it sets a closed loop's rate, and its latency, at c = 16 and 64.",
            "",
            "| c | front | Firestore | Pub/Sub | GCS | emulators | load generator "
            "| front's own | all |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in levels:
            for name, spent in lv["side_cpu_ms_per_request"].items():
                # a direct floor's calls run in this process: its CPU is in the load column
                direct = name in {"direct_calls", "direct_same"}
                own = 0.0 if direct or name not in lv else lv[name]["cpu_ms_per_request"]
                emulated = sum(v for k, v in spent.items() if k != "load")
                lines.append(
                    f"| {lv['concurrency']} | {_LABELS.get(name, name)} "
                    f"| {spent.get('firestore', 0.0)} | {spent.get('pubsub', 0.0)} "
                    f"| {spent.get('storage', 0.0)} | {emulated:.3f} | {spent['load']} "
                    f"| {'—' if direct else own} | {emulated + spent['load'] + own:.3f} |"
                )
        lines.append("")
    if "paired" in results:
        pr = results["paired"]
        tenths = pr["p50_vs_direct_by_tenth"]
        lines += [
            "",
            f"p50 at c = 1 with the fronts taking turns request by request (`figure_paired`, "
            f"{pr['turns']} turns, a blocking client): ingress {pr['ingress']['p50_ms']} ms, the "
            f"three calls served alone {pr['served_calls']['p50_ms']} ms, the same calls made "
            f"in-process {pr['direct']['p50_ms']} ms; ingress ÷ direct "
            f"{_check(pr['p50_vs_direct'], 1.2)} (in each tenth of the turns "
            f"{min(tenths)}–{max(tenths)}), the served calls ÷ direct "
            f"{pr['served_p50_vs_direct']}; the ingress adds {pr['paired_over_direct_ms']} ms a "
            "request (median of the turns' differences).",
            "",
        ]
    for lv in levels:
        if "ingress_p50_ms_by_marker" in lv:
            m = lv["ingress_p50_ms_by_marker"]
            lines.append(
                f"Ingress p50 at c = {lv['concurrency']} by event: {m['marker']} ms with issue 10's "
                f"body marker (GitHub, Shopify: {m['requests'][0]} events), {m['no_marker']} ms "
                f"without ({m['requests'][1]})."
            )
    if "verification" in results:
        lines += ["", "## 2. Verification against raw hmac (target ≥ 0.9)", ""]
        lines += [
            "| scheme | 1 KiB verify/s | raw/s | ratio | 64 KiB verify/s | raw/s | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        small, large = results["verification"]["1KiB"], results["verification"]["64KiB"]
        for name in small:
            sm, lg = small[name], large[name]
            lines.append(
                f"| {name} | {sm['verify_per_s']:,} | {sm['raw_hmac_per_s']:,} | {_check(sm['ratio'], 0.9, True)} "
                f"| {lg['verify_per_s']:,} | {lg['raw_hmac_per_s']:,} | {_check(lg['ratio'], 0.9, True)} |"
            )
    cold = results["cold_start"]
    lines += [
        "",
        "## 3. Cold start, memory",
        "",
        "Process start to first answer, each function run from its deployed archive in a",
        f"virtualenv of only its requirements.txt ({cold.get('python', 'python')}); ingress: a signed",
        "event (202), deliver: a push of a stored event delivered to a stand-in WordPress (204),",
        "hello: functions-framework's bare hello in the ingress's virtualenv. As deployed:",
        "secrets read from Secret Manager with a token from the metadata server, and deliver",
        "checking the push's OIDC token against Google's certificates (fetched on the first",
        "push), every one of them a local stand-in answering in ~1 ms; and, since run 27, every",
        "API and WordPress reached over TLS as in the cloud (an HTTPS front before each stand-in",
        "and emulator, the system's CA set trusted with the fronts' authority: tests/tls_front.py).",
        f"Medians of {len(cold['hello']['runs_s'])} starts each, the cases taking turns.",
        "",
        "| figure | value | floor | ratio | target |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "ingress": "ingress",
        "deliver": "deliver",
        "ingress_cloud": "ingress, deployed configuration (Secret Manager, token: stand-ins; "
        "every API over TLS)",
        "deliver_cloud": "deliver, deployed configuration (the above, and the push's OIDC "
        "token checked; certificates: a stand-in; WordPress over TLS too)",
    }
    for name, label in labels.items():
        if name not in cold:
            continue
        lines.append(
            f"| cold start {label} (s) | {cold[name]['seconds']} | {cold['hello']['seconds']} "
            f"(hello) | {cold[name]['vs_hello']} | ≤ 1.5 "
            f"({_verdict(cold[name]['vs_hello'], 1.5, False)}) |"
        )
    peak = max(lv["ingress"]["peak_rss_mib"] for lv in levels)
    lines.append(
        f"| peak RSS of the ingress tree, 1 worker (MiB) | {peak} | | | ≤ 200 ({_verdict(peak, 200, False)}) |"
    )
    lines += [
        "",
        "Imports before the first answer (`-X importtime`, self time summed per package; "
        "the logs are in [importtime/](importtime/)):",
        "",
        "| function | modules | import ms | largest packages (ms) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {cold[name]['imports']['modules']} | {cold[name]['imports']['total_ms']} | "
            + ", ".join(
                f"{k} {v}" for k, v in list(cold[name]["imports"]["by_package_ms"].items())[:8]
            )
            + " |"
            for name in ("hello", "ingress", "deliver", "ingress_cloud", "deliver_cloud")
            if name in cold
        ),
    ]
    if "timeline" in results:
        lines += timeline.markdown(results["timeline"])
    if "tail" in results:
        lines += timeline.tail_markdown(results["tail"])
    if "sweep" in results:
        peak_sweep = max(r["peak_rss_mib"] for r in results["sweep"])
        lines += [
            "",
            "### WORKERS × THREADS at concurrency 64",
            "",
            f"Every configuration's server up at once, taking turns in {SWEEP_ROUNDS} parts "
            "(the order reversed every other part), so the emulators' slowing over the run "
            "falls on all alike.",
            "",
            "| workers | threads | rps | p50 ms | p99 ms | CPU ms/event | peak RSS MiB |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {r['workers']} | {r['threads']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} "
                f"| {r['cpu_ms_per_request']} | {r['peak_rss_mib']} |"
                for r in results["sweep"]
            ),
            "",
            f"Peak RSS, any sweep configuration: {peak_sweep} MiB (4 workers: 4 processes).",
            "",
            f"Chosen per-instance concurrency: **{results['chosen']['concurrency']}** "
            f"(one worker, the fewest threads within 5 % of the best single-worker throughput, "
            f"{results['chosen']['best_single_worker_rps']} rps).",
        ]
    dr = results.get("drain", {})
    if dr and not dr.get("skipped"):
        lines += [
            "",
            "## 4. Drain into WordPress, and deliver's CPU",
            "",
            "| path | events | seconds | per second |",
            "|---|---|---|---|",
            f"| pipeline (ingress → Pub/Sub push → deliver → plugin) | {dr['pipeline_delivered']} | {dr['pipeline_s']} | {dr['pipeline_per_s']} |",
            f"| bare httpx POSTs straight to the plugin, {dr['concurrency']} at a time | {dr['events']} | {dr['direct_s']} | {dr['direct_per_s']} |",
            "",
            f"Drain ratio {_check(dr['ratio'], 0.9, True)} (target ≥ 0.9).",
            "",
            "| CPU per delivered event | ms |",
            "|---|---|",
            f"| deliver's gunicorn tree, one push at a time as deployed | {dr['deliver_cpu_ms_per_event']} |",
            f"| a bare httpx POST of the same record to the same WordPress | {dr['bare_post_cpu_ms_per_event']} |",
            f"| ratio (target ≤ 2) | {_check(dr['deliver_cpu_vs_bare_post'], 2.0)} |",
            "",
            f"Pushes deliver answered, by outcome: {dr.get('pushes', {})}.",
        ]
    if "sweep" in results:
        lines += [
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
        ]
    lines += ["", "![latency, throughput and CPU per event](bench.png)", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.run [--quick] [--profile]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about 5 minutes)")
    parser.add_argument("--skip-drain", action="store_true", help="no WordPress needed")
    parser.add_argument("--skip-sweep", action="store_true", help="no WORKERS × THREADS sweep")
    parser.add_argument(
        "--no-seed", action="store_true", help="leave out the seed's design (not a full result)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="only the py-spy profiles (bench/results/profile/)"
    )
    parser.add_argument(
        "--perf",
        action="store_true",
        help="only perf's true CPU by function at c = 1, the ingress as deployed beside the "
        "served calls (bench/results/profile/perf-c1.md; needs perf and root)",
    )
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="only the candidates, one by one (bench/results/candidates.md)",
    )
    parser.add_argument(
        "--only",
        help="only these figures, comma-separated (cold, timeline, tail, drain, ingress, "
        "network, distance, paired): to "
        "<out>/only.json, "
        "not bench.*",
    )
    parser.add_argument(
        "--levels",
        default=",".join(map(str, CONCURRENCY)),
        help="with --only ingress: these concurrencies (default 1,16,64)",
    )
    parser.add_argument(
        "--asgi-candidate",
        action="store_true",
        help="with --only ingress: one more front, the ingress's work in ASGI mode "
        "(bench/asgi_ingress.py)",
    )
    parser.add_argument(
        "--yardsticks",
        action="store_true",
        help="with --only ingress: two more fronts, the three calls served on an asyncio wire "
        "and with the publish overlapped (YARDSTICKS)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=NETWORK_DELAY_MS,
        help="with --only network or distance: how far every service is (default 10 ms a round trip)",
    )
    parser.add_argument(
        "--distance-levels",
        default="1",
        help="with --only distance: these concurrencies (default 1; 16 for point 3's p99)",
    )
    parser.add_argument(
        "--deliver-profile", type=Path, help="with --only drain: py-spy on deliver, to this folder"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    flags = [
        f
        for f in ("--quick", "--skip-drain", "--skip-sweep", "--no-seed")
        if getattr(args, f[2:].replace("-", "_"))
    ]
    command = "nox -s bench" + (" -- " + " ".join(flags) if flags else "")
    results: dict[str, Any] = {"command": command, "machine": machine(), "plan": plan.__dict__}
    # what waking a thread costs here, before anything of ours runs (bench/wake_probe.py)
    results["machine"]["wake_round_trips"] = wake_probe.measure(WAKE_ROUND_TRIPS)
    started = time.perf_counter()
    where, results["machine"]["work_directory_fs"] = work_directory()
    with (
        tempfile.TemporaryDirectory(prefix="hookpress-bench-", dir=where) as tmp,
        bench_environment(Path(tmp)) as bench,
    ):
        if args.profile:
            profile_ingress(bench, plan, args.out / "profile")
            return 0
        if args.perf:
            perf_c1(bench, args.out / "profile")
            return 0
        if args.candidates:
            from bench import candidates

            say("[candidates] one call at a time, then 16 at once; then the bare servers")
            candidates.run(
                bench.emulators.project,
                "hookpress-bench",
                "bench-events",
                args.out,
                100 if args.quick else 300,
            )
            return 0
        if args.only:
            figures = set(args.only.split(","))
            only: dict[str, Any] = {"machine": results["machine"]}
            if "cold" in figures:
                only["cold_start"] = figure_cold_start(bench, plan, args.out)
            if "timeline" in figures:
                only["timeline"] = figure_timeline(bench)
            if "tail" in figures:
                only["tail"] = figure_tail(bench)
            if "drain" in figures:
                only["drain"] = figure_drain(bench, plan, args.deliver_profile)
            if "network" in figures:
                only["network"] = figure_network(bench, plan, args.delay_ms / 1000)
            if "distance" in figures:
                only["distance"] = [
                    figure_distance(bench, plan, args.delay_ms / 1000, c)
                    for c in (int(c) for c in args.distance_levels.split(","))
                ]
            if "paired" in figures:
                only["paired"] = figure_paired(bench, plan)
            if "ingress" in figures:
                with contextlib.ExitStack() as anchors:
                    if not args.no_seed:
                        bench.seed = anchors.enter_context(SeedAnchor())
                    levels = [int(c) for c in args.levels.split(",")]
                    only["ingress"] = figure_ingress(
                        bench,
                        plan,
                        levels,
                        asgi=args.asgi_candidate,
                        yardsticks=args.yardsticks,
                    )
                for level in only["ingress"]["levels"]:
                    level.pop("_latencies")
            write_json(args.out / "only.json", only)
            print(json.dumps(only, indent=1))
            return 0
        say("[2] verification")
        results["verification"] = figure_verification(plan)
        say("[3] cold starts")
        results["cold_start"] = figure_cold_start(bench, plan, args.out)
        say("[3] where a request's and a cold start's time go")
        results["timeline"] = figure_timeline(bench)
        with contextlib.ExitStack() as anchors:
            if not args.no_seed:
                say("[1] starting the seed's design (../shared/anchors/seed-django)")
                bench.seed = anchors.enter_context(SeedAnchor())
            results["ingress"] = figure_ingress(bench, plan)
        say("[1] c = 1, the fronts taking turns request by request")
        results["paired"] = figure_paired(bench, plan)
        say("[1] c = 16, where the slowest requests' time goes")
        results["tail"] = figure_tail(bench)
        if not args.skip_sweep:
            results["sweep"] = figure_sweep(bench, plan)
            results["chosen"] = choose_concurrency(results["sweep"])
        results["drain"] = figure_drain(bench, plan) if not args.skip_drain else {"skipped": True}
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "bench.png")
    for level in results["ingress"]["levels"]:
        level.pop("_latencies")
    write_json(args.out / "bench.json", results)
    text = markdown(results, command)
    write_markdown(args.out / "bench.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
