"""Nothing lost, nothing applied twice: ``nox -s chaos`` (2,000 events; ``--events`` up to 10,000).

Against the local stack with a real WordPress (:class:`hookpress.local.stack.LocalStack`):

- N signed events across every source (one per scheme), sent by 16 threads
  that behave like providers: a 503 or a dropped connection is retried with
  backoff and a fresh signature, up to 8 times;
- 10 % of the events are sent again later, 5 % are sent twice at the same
  moment;
- the ingress runs ``hookpress/local/faulty_ingress.py``: the real ingress with
  10 % of its publishes failing (half refused, half sent but unacknowledged,
  so the retry publishes the key a second time);
- the fault proxy in front of WordPress answers 503 or 429, or hangs past the
  deliver function's read timeout, on 20 % of calls;
- the deliver process is SIGKILLed and restarted twice while events flow.

Then it waits for the drain and counts like a queue checker: what was sent
and answered; what the records say; what WordPress holds. Invariants: no
accepted event lost (no post, and not ``failed``/``dead`` with a reason), no
external id with two posts, no post nobody sent, every stored GCS object
equal to the bytes sent. With five attempts and 20 % faults (and the breaker
and the kills spending attempts) a few events may legitimately end ``dead``:
they are counted, and then replayed with
:meth:`hookpress.publication.Publication.replay` once the faults are off, as
the on-call engineer would; the run reports both figures.

Writes ``bench/results/chaos.{json,md}``; exits 1 if an invariant broke.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from bench._common import FUNCTIONS, RESULTS, machine, write_json, write_markdown
from hookpress.local.emulators import Emulators
from hookpress.local.faultproxy import QuietHTTPServer
from hookpress.local.framework import FunctionProcess
from hookpress.local.stack import (
    DEAD_PUSH_SUBSCRIPTION,
    PUSH_SUBSCRIPTION,
    SCHEME_SOURCES,
    LocalStack,
    StackOptions,
)
from hookpress.local.wordpress import WordPressServer
from hookpress.signatures import SCHEMES

__all__ = ["ChaosOptions", "ChaosResult", "main", "run_chaos"]

FAULTY_INGRESS = FUNCTIONS / "hookpress" / "local" / "faulty_ingress.py"
TERMINAL = frozenset({"delivered", "failed", "dead"})
MAX_SEND_ATTEMPTS = 8
# The second kill waits this long after the first replacement came up, so that
# each kill hits a warm instance with requests in flight.
KILL_SPACING_S = 10.0
FRONT_DOOR_HOLD_S = 30.0


@dataclass
class ChaosOptions:
    """The knobs of one run; the defaults are issue 6's."""

    events: int = 2000
    resend_share: float = 0.10
    concurrent_share: float = 0.05
    wp_fault_rate: float = 0.20
    wp_hang_share: float = 1 / 3  # of the WordPress faults; the rest are 503 or 429
    publish_failure_rate: float = 0.10
    kills: int = 2
    senders: int = 16
    seed: int = 6
    drain_timeout_s: float = 900.0
    replay_dead: bool = True
    wp_read_timeout_s: float = 3.0


@dataclass
class ChaosResult:
    """Everything counted; ``broken`` lists the invariants that did not hold."""

    options: dict[str, Any]
    sent: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    wordpress: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    invariants: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def broken(self) -> list[str]:
        """The names of the invariants whose count is not zero."""
        return [name for name, count in self.invariants.items() if count]


def use_faulty_ingress(stack: LocalStack, rate: float, seed: int) -> None:
    """Replace the stack's ingress by the faulty entry module, on the same port."""
    old = stack.ingress
    if old is None:
        raise RuntimeError("the stack is not running")
    old.stop()
    env = {
        **stack.ingress_env(),
        "HOOKPRESS_CHAOS_PUBLISH_FAILURE_RATE": str(rate),
        "HOOKPRESS_CHAOS_SEED": str(seed),
    }
    faulty = FunctionProcess(
        "ingress",
        "ingress_with_faults",
        env,
        stack.workdir / "logs" / "ingress-chaos.log",
        old.port,
        source=FAULTY_INGRESS,
    )
    faulty.start()
    stack.ingress = faulty


class _FrontDoorHandler(BaseHTTPRequestHandler):
    server: _FrontDoorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        deadline = time.monotonic() + FRONT_DOOR_HOLD_S
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                self._reply(response.status, response.read())
                return
            except ConnectionRefusedError:
                # No instance yet: hold the request while one starts, as Cloud Run does.
                if time.monotonic() > deadline:
                    self._reply(503, b"no instance")
                    return
                time.sleep(0.1)
            except OSError:
                self._reply(503, b"instance died mid-request")  # what Cloud Run answers too
                return
            finally:
                conn.close()


class _FrontDoorServer(QuietHTTPServer):
    upstream_port: int


class FrontDoor:
    """Between Pub/Sub and the deliver function, as Cloud Run's front end is in the cloud.

    In the cloud a push never meets a closed port: while an instance dies and
    another starts, requests are held for the new one, and only those in
    flight on the dead one fail (5xx). Locally nothing holds them: a restart
    would be a burst of refused connections, after which the Pub/Sub emulator
    stops redelivering the subscription's nacked messages (records stay
    ``published``, the messages in no subscription). So the chaos run pushes
    through this door, which holds new requests while deliver restarts and
    answers 503 for those the kill cut off.
    """

    def __init__(self, upstream_port: int) -> None:
        self._server = _FrontDoorServer(("127.0.0.1", 0), _FrontDoorHandler)
        self._server.upstream_port = upstream_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, stack: LocalStack) -> FrontDoor:
        """Serve, and point the stack's push subscriptions here."""
        from google.cloud import pubsub_v1

        self._thread.start()
        client = pubsub_v1.SubscriberClient()
        project = stack.options.project
        for name, path in ((PUSH_SUBSCRIPTION, "/"), (DEAD_PUSH_SUBSCRIPTION, "/dead")):
            client.modify_push_config(
                request={
                    "subscription": client.subscription_path(project, name),
                    "push_config": {"push_endpoint": f"{self.url}{path}"},
                }
            )
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


# -- events and the sender -----------------------------------------------------------


@dataclass
class Event:
    """One event the run sends, and what happened to its requests."""

    index: int
    source: str
    external_id: str
    body: bytes
    key: str
    statuses: list[int | str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Answered 202 or 200 at least once."""
        return any(s in (200, 202) for s in self.statuses)


def make_events(n: int, run: str, sources: Sequence[str], rng: random.Random) -> list[Event]:
    """N events spread over the sources, bodies of 100 B to 8 KiB."""
    events = []
    for i in range(n):
        source = sources[i % len(sources)]
        external_id = f"chaos-{run}-{i:05d}"
        payload = {
            "id": external_id,
            "event_id": external_id,
            "type": "chaos.completed",
            "status": "completed",
            "summary": f"chaos event {i} from {source}",
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"object": {"id": external_id, "n": i}},
            "padding": "x" * rng.randint(0, 8000),
        }
        body = json.dumps(payload).encode()
        key = hashlib.sha256(f"{source}:{external_id}".encode()).hexdigest()
        events.append(Event(i, source, external_id, body, key))
    return events


class Sender:
    """Sends events like a provider: signs each attempt afresh, retries 503 with backoff."""

    def __init__(self, stack: LocalStack, concurrency: int, seed: int) -> None:
        if stack.ingress is None:
            raise RuntimeError("the stack is not running")
        self.url = stack.ingress.url
        self.secrets = {name: values[0] for name, values in stack.source_secrets.items()}
        self.schemes = dict(stack.options.sources)
        self.client = httpx.Client(
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=concurrency * 2),
        )
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)  # noqa: S311 - jitter, not security

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def send(self, event: Event) -> int | str:
        """One delivery of ``event`` (with retries); the final status."""
        status: int | str = "not sent"
        for attempt in range(MAX_SEND_ATTEMPTS):
            scheme = self.schemes[event.source]
            headers = SCHEMES[scheme].sign(
                event.body,
                self.secrets[event.source],
                now=time.time(),
                delivery_id=event.external_id,
            )
            try:
                response = self.client.post(
                    f"{self.url}/{event.source}",
                    content=event.body,
                    headers={**headers, "Content-Type": "application/json"},
                )
                status = response.status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            with self.lock:
                self.requests[str(status)] += 1
                event.statuses.append(status)
            if status not in (503,) and not isinstance(status, str):
                return status
            with self.lock:
                pause = min(2.0, 0.1 * 2**attempt) * (0.5 + self.rng.random())
            time.sleep(pause)
        return status


# -- reading what landed -----------------------------------------------------------------


def read_records(project: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The Firestore records of ``keys`` (missing ones left out)."""
    from google.cloud import firestore

    db = firestore.Client(project=project)
    col = db.collection("events")
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 300):
        refs = [col.document(k) for k in keys[start : start + 300]]
        for snap in db.get_all(refs):
            if snap.exists:
                found[snap.id] = snap.to_dict() or {}
    return found


def read_posts(stack: LocalStack, prefix: str) -> list[dict[str, Any]]:
    """Every ai_event whose external_id starts with ``prefix``, as the admin reads them."""
    site = stack.site
    posts: list[dict[str, Any]] = []
    with httpx.Client(auth=(site.admin_user, site.admin_app_password), timeout=60) as client:
        page = 1
        while True:
            response = client.get(
                f"{site.rest_base}/wp/v2/ai-events",
                # Ordered by id: by date (the default), posts of the same second can
                # swap places between pages and be read twice or not at all.
                params={
                    "status": "any",
                    "per_page": 100,
                    "page": page,
                    "orderby": "id",
                    "order": "asc",
                    "_fields": "id,status,meta",
                },
            )
            if response.status_code == 400 and page > 1:
                break  # past the last page
            response.raise_for_status()
            batch = response.json()
            posts += [p for p in batch if str(p["meta"].get("external_id", "")).startswith(prefix)]
            if page >= int(response.headers.get("X-WP-TotalPages", "1")):
                break
            page += 1
    return posts


def check_storage(
    stack: LocalStack, events: Sequence[Event], records: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Each accepted event's GCS object holds exactly the bytes sent."""
    from google.cloud import storage

    from hookpress.local.stack import BUCKET

    bucket = storage.Client(project=stack.options.project).bucket(BUCKET)
    checked = mismatched = missing = 0
    bad: list[str] = []
    for event in events:
        record = records.get(event.key)
        if record is None:
            continue
        name = str(record.get("raw_uri", "")).removeprefix(f"gs://{BUCKET}/")
        try:
            data = bucket.blob(name).download_as_bytes()
        except Exception:  # noqa: BLE001 - any failure to read counts as missing
            missing += 1
            bad.append(event.external_id)
            continue
        checked += 1
        want = hashlib.sha256(event.body).hexdigest()
        if hashlib.sha256(data).hexdigest() != want or record.get("body_sha256") != want:
            mismatched += 1
            bad.append(event.external_id)
    return {
        "objects_checked": checked,
        "sha256_mismatch": mismatched,
        "missing": missing,
        "bad": bad[:10],
    }


# -- the run -----------------------------------------------------------------------------


def _statuses(records: dict[str, dict[str, Any]], keys: Sequence[str]) -> Counter[str]:
    return Counter(str(records.get(k, {}).get("status", "no record")) for k in keys)


def wait_drained(
    project: str, keys: Sequence[str], timeout_s: float, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Poll until every key's record is terminal (or the timeout); return the records."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        records = read_records(project, keys)
        counts = _statuses(records, keys)
        pending = sum(n for s, n in counts.items() if s not in TERMINAL)
        line = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
        if line != last:
            say(f"  records: {line}")
            last = line
        if pending == 0 or time.monotonic() > deadline:
            return records
        time.sleep(2.0)


def run_chaos(
    options: ChaosOptions,
    workdir: Path,
    *,
    emulators: Emulators | None = None,
    wordpress: WordPressServer | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> ChaosResult:
    """Start a stack (reusing the given emulators and WordPress), run, count, stop."""
    rng = random.Random(options.seed)  # noqa: S311 - a test's choices, not security
    run = secrets.token_hex(3)
    stack_options = StackOptions(
        # Its own project: the emulators may be shared with other stacks whose
        # subscriptions (same names) push to functions that no longer run.
        project=f"hookpress-chaos-{run}",
        sources=dict(SCHEME_SOURCES),
        max_attempts=5,
        wp_read_timeout_s=options.wp_read_timeout_s,
        # The emulator retries a nacked push at once (no retry policy: see StackOptions);
        # an open breaker would turn those retries into five quick nacks and a dead letter.
        # The breaker has its own tests; here WordPress's faults should meet real attempts.
        breaker_threshold=1000,
    )
    result = ChaosResult(options=asdict(options))
    started_stack = time.monotonic()
    stack = LocalStack(workdir, stack_options, emulators=emulators, wordpress=wordpress)
    stack.start()
    front: FrontDoor | None = None
    try:
        use_faulty_ingress(stack, options.publish_failure_rate, options.seed)
        if stack.deliver is None:
            raise RuntimeError("the stack is not running")
        front = FrontDoor(stack.deliver.port).start(stack)
        result.timings["stack_start_s"] = round(time.monotonic() - started_stack, 1)
        say(f"stack up in {result.timings['stack_start_s']} s; run {run}")
        _run(stack, options, run, rng, result, say)
    finally:
        if front is not None:
            front.stop()
        stack.stop()
    return result


def _run(
    stack: LocalStack,
    options: ChaosOptions,
    run: str,
    rng: random.Random,
    result: ChaosResult,
    say: Callable[[str], None],
) -> None:
    if stack.proxy is None:
        raise RuntimeError("the stack is not running")
    project = stack.options.project
    sources = sorted(stack.options.sources)
    events = make_events(options.events, run, sources, rng)
    order = list(events)
    rng.shuffle(order)
    pairs = set(rng.sample(range(options.events), round(options.events * options.concurrent_share)))
    resend = rng.sample(range(options.events), round(options.events * options.resend_share))

    stack.proxy.set(
        rate=options.wp_fault_rate,
        rate_statuses=[503, 429],
        rate_hang_share=options.wp_hang_share,
        hang_s=options.wp_read_timeout_s + 1,
        seed=options.seed,
    )
    sender = Sender(stack, options.senders, options.seed)
    done = 0
    done_lock = threading.Lock()
    kill_at = [options.events * (k + 1) // (options.kills + 1) for k in range(options.kills)]
    kills: list[float] = []
    t0 = time.monotonic()

    def one(event: Event) -> None:
        nonlocal done
        if event.index in pairs:
            # The same request twice at the same moment.
            barrier = threading.Barrier(2)

            def twin() -> None:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=5)
                sender.send(event)

            other = threading.Thread(target=twin)
            other.start()
            twin()
            other.join()
        else:
            sender.send(event)
        with done_lock:
            done += 1

    def killer() -> None:
        last = t0 - KILL_SPACING_S
        for at in kill_at:
            while True:
                with done_lock:
                    if done >= at and time.monotonic() - last >= KILL_SPACING_S:
                        break
                time.sleep(0.05)
            started = time.monotonic()
            stack.restart_deliver(kill=True)
            last = time.monotonic()
            kills.append(round(started - t0, 1))
            say(f"  deliver killed and restarted at {started - t0:.1f} s ({at} events sent)")

    kill_thread = threading.Thread(target=killer, daemon=True)
    kill_thread.start()
    say(f"sending {options.events} events ({len(pairs)} twice at once, {len(resend)} again later)")
    with ThreadPoolExecutor(options.senders) as pool:
        list(pool.map(one, order))
    sent_s = time.monotonic() - t0
    say(f"  sent in {sent_s:.1f} s; sending {len(resend)} again")
    with ThreadPoolExecutor(options.senders) as pool:
        list(pool.map(lambda i: sender.send(events[i]), resend))
    sender.close()
    all_sent_s = time.monotonic() - t0
    kill_thread.join(timeout=KILL_SPACING_S * (options.kills + 1))

    accepted = [e for e in events if e.accepted]
    keys = [e.key for e in accepted]
    say(f"draining {len(accepted)} accepted events")
    records = wait_drained(project, keys, options.drain_timeout_s, say)
    drain_s = time.monotonic() - t0
    before_replay = _statuses(records, keys)
    faults = stack.proxy.snapshot()

    replayed = 0
    if options.replay_dead and before_replay.get("dead"):
        from hookpress.backends.firestore import EventRecords
        from hookpress.backends.pubsub import EventPublisher
        from hookpress.logs import Logger
        from hookpress.publication import Publication

        stack.proxy.clear()  # the incident is over: replay as on-call would
        event_records = EventRecords(project, "(default)", "events", 10)
        publication = Publication(
            event_records, EventPublisher(project, "events", 10), 21, Logger("chaos", sys.stderr)
        )
        for key in keys:
            if records[key].get("status") == "dead":
                snapshot = event_records.get(key)
                if snapshot is not None and publication.replay(snapshot, time.time()):
                    replayed += 1
        say(f"replayed {replayed} dead events")
        records = wait_drained(project, keys, options.drain_timeout_s, say)
    final_s = time.monotonic() - t0

    # -- count ------------------------------------------------------------------------
    posts = read_posts(stack, f"chaos-{run}-")
    by_external: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for post in {p["id"]: p for p in posts}.values():
        by_external[str(post["meta"]["external_id"])].append(post)
    sent_pairs = {(e.source, e.external_id) for e in events}
    final = _statuses(records, keys)
    lost: list[str] = []
    explained = 0
    for event in accepted:
        if by_external.get(event.external_id):
            continue
        record = records.get(event.key, {})
        if record.get("status") in {"failed", "dead"} and record.get("last_error"):
            explained += 1
        else:
            lost.append(event.external_id)
    duplicates = [x for x, ps in by_external.items() if len(ps) > 1]
    unexpected = [
        x
        for x, ps in by_external.items()
        for p in ps
        if (p["meta"].get("source"), x) not in sent_pairs
    ]
    never_accepted = [e.external_id for e in events if not e.accepted]
    first_answers = Counter(str(e.statuses[0]) if e.statuses else "none" for e in events)
    twos = sum(1 for e in events if e.statuses.count(202) > 1)
    storage = check_storage(stack, accepted, records)
    bad_status = {s: n for s, n in sender.requests.items() if s not in {"200", "202", "503"}}

    result.sent = {
        "events": len(events),
        "sources": len(sources),
        "sent_twice_concurrently": len(pairs),
        "sent_again_later": len(resend),
        "requests": sum(sender.requests.values()),
        "answers": dict(sorted(sender.requests.items())),
        "202": sender.requests.get("202", 0),
        "200_duplicate": sender.requests.get("200", 0),
        "503_retried": sender.requests.get("503", 0),
        "first_answers": dict(sorted(first_answers.items())),
        "accepted_events": len(accepted),
        "never_accepted": len(never_accepted),
    }
    result.records = {
        "before_replay": dict(sorted(before_replay.items())),
        "replayed": replayed,
        "final": dict(sorted(final.items())),
        "attempts": dict(
            sorted(
                Counter(str(r.get("attempts", 0)) for r in records.values()).items(),
                key=lambda kv: int(kv[0]),
            )
        ),
    }
    result.wordpress = {
        "posts": len(posts),
        "distinct_external_ids": len(by_external),
        "delivered_records": final.get("delivered", 0),
        "posts_for_records_not_delivered": sum(
            1
            for e in accepted
            if by_external.get(e.external_id)
            and records.get(e.key, {}).get("status") != "delivered"
        ),
        "undelivered_explained": explained,
    }
    result.storage = {k: v for k, v in storage.items() if k != "bad"}
    result.faults = {
        "wordpress_calls_forwarded": faults.get("forwarded", 0),
        "wordpress_faults_injected": faults.get("injected", {}),
        "deliver_kills_at_s": kills,
        "publish_failure_rate": options.publish_failure_rate,
    }
    result.timings.update(
        {
            "send_s": round(sent_s, 1),
            "send_incl_resends_s": round(all_sent_s, 1),
            "drain_s": round(drain_s, 1),
            "drain_incl_replay_s": round(final_s, 1),
            "delivered_per_s": round(final.get("delivered", 0) / drain_s, 1) if drain_s else 0.0,
        }
    )
    not_terminal = sum(n for s, n in final.items() if s not in TERMINAL)
    result.invariants = {
        "lost": len(lost),
        "duplicate_effects": len(duplicates),
        "unexpected_posts": len(unexpected),
        "gcs_sha256_mismatch": storage["sha256_mismatch"],
        "gcs_object_missing": storage["missing"],
        "more_than_one_202_per_event": twos,
        "answers_outside_200_202_503": sum(bad_status.values()),
        "never_accepted": len(never_accepted),
        "not_terminal_after_drain": not_terminal,
    }
    result.examples = {
        "lost": lost[:10],
        "duplicate_effects": duplicates[:10],
        "unexpected_posts": unexpected[:10],
        "gcs": storage["bad"],
        "never_accepted": never_accepted[:10],
    }


# -- output ------------------------------------------------------------------------------


def markdown(result: ChaosResult, command: str) -> str:
    """The results as Markdown tables."""
    s, r, w, t, f = result.sent, result.records, result.wordpress, result.timings, result.faults
    inv = result.invariants
    lines = [
        "# Chaos run: nothing lost, nothing applied twice",
        "",
        f"Command: `{command}`",
        "",
        f"{s['events']:,} signed events over {s['sources']} sources; "
        f"{s['sent_twice_concurrently']} sent twice at once, {s['sent_again_later']} again later; "
        f"WordPress faults on {result.options['wp_fault_rate']:.0%} of calls "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(f['wordpress_faults_injected'].items()))}); "
        f"{result.options['publish_failure_rate']:.0%} of ingress publishes failing; "
        f"deliver SIGKILLed at {', '.join(f'{x} s' for x in f['deliver_kills_at_s'])}.",
        "",
        "| sender (like a provider) | count |",
        "|---|---|",
        f"| requests sent | {s['requests']:,} |",
        f"| 202 accepted | {s['202']:,} |",
        f"| 200 duplicate | {s['200_duplicate']:,} |",
        f"| 503 (retried) | {s['503_retried']:,} |",
        f"| events accepted | {s['accepted_events']:,} of {s['events']:,} |",
        "",
        "| records | count |",
        "|---|---|",
        *(f"| {k} (before replay) | {v:,} |" for k, v in r["before_replay"].items()),
        f"| dead events replayed | {r['replayed']} |",
        *(f"| {k} (final) | {v:,} |" for k, v in r["final"].items()),
        f"| WordPress posts | {w['posts']:,} ({w['distinct_external_ids']:,} external ids) |",
        "",
        "| invariant | count | must be |",
        "|---|---|---|",
        *(f"| {k.replace('_', ' ')} | {v} | 0 |" for k, v in inv.items()),
        "",
        "| time | seconds |",
        "|---|---|",
        f"| sending (incl. resends) | {t['send_incl_resends_s']} |",
        f"| first send to drained | {t['drain_s']} |",
        f"| first send to drained, incl. replay | {t['drain_incl_replay_s']} |",
        f"| delivered per second (whole run) | {t['delivered_per_s']} |",
        "",
        f"GCS: {result.storage['objects_checked']:,} objects read back, sha256 equal to the bytes "
        f"sent for all but {result.storage['sha256_mismatch']}.",
        "",
        "Attempts per record: " + ", ".join(f"{k}: {v}" for k, v in r["attempts"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.chaos [--events N] [--seed N] [--no-replay]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=2000, help="1 to 10,000 (default 2,000)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--no-replay", action="store_true", help="leave dead events dead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--case",
        choices=["all", "faults", "lanes"],
        default="all",
        help="faults: the 2,000-event run; lanes: the bulk-flood case (bench/lanes.py)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 10_000:
        parser.error("--events must be between 1 and 10,000")
    options = ChaosOptions(events=args.events, seed=args.seed, replay_dead=not args.no_replay)
    command = "nox -s chaos" + (f" -- --events {args.events}" if args.events != 2000 else "")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    lanes_met = True
    if args.case in {"all", "lanes"}:
        from bench.lanes import markdown as lanes_markdown
        from bench.lanes import run_lanes

        with tempfile.TemporaryDirectory(prefix="hookpress-lanes-") as tmp:
            lanes = run_lanes(Path(tmp), say=say)
        lanes_command = "nox -s chaos -- --case lanes"
        write_json(
            args.out / "lanes.json", {"command": lanes_command, "machine": machine(), **lanes}
        )
        write_markdown(args.out / "lanes.md", lanes_markdown(lanes, lanes_command))
        print(lanes_markdown(lanes, lanes_command))
        lanes_met = bool(lanes["met"])
        if args.case == "lanes":
            return 0 if lanes_met else 1
    with tempfile.TemporaryDirectory(prefix="hookpress-chaos-") as tmp:
        result = run_chaos(options, Path(tmp), say=say)
    data = {"command": command, "machine": machine(), **asdict(result), "broken": result.broken}
    write_json(args.out / "chaos.json", data)
    text = markdown(result, command)
    write_markdown(args.out / "chaos.md", text)
    print(text)
    if result.broken:
        say(f"INVARIANTS BROKEN: {', '.join(result.broken)}; examples: {result.examples}")
        return 1
    return 0 if lanes_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
