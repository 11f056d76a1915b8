"""The candidates of issue 12, measured one by one: ``nox -s bench -- --candidates``.

Each row is the CPU (``time.process_time``: every thread of this process,
the client libraries' background threads included) and the wall time per
call, over the same emulators, made one call at a time after a warm-up;
then the same calls from 16 threads at once. What the ingress adopted is
marked *(hookpress)*; the rest is what it was measured against:

- Pub/Sub: the publisher client's batching (a background commit thread, a
  future and a condition per message, a 5 ms window) against a direct
  ``Publish`` call (the library's GAPIC client) and against the REST call;
- GCS: google-cloud-storage's upload (requests/urllib3) against the JSON
  API multipart upload over one pooled keep-alive connection;
- Firestore: the library's ``create`` and conditional ``update`` (gRPC,
  proto-plus) against REST ``commit`` with the same preconditions;
- the GCS write ∥ Firestore create: a thread pool (submit, create, wait)
  against the split-phase call in one thread;
- the per-request extras: one JSON log line, the settings/secret/source
  lookups;
- the server: functions-framework's Flask mode (gunicorn threads) against
  its ASGI mode (``functions_framework.aio``, Starlette under uvicorn), a bare
  202 each, at concurrency 1, 16 and 64.

Writes ``bench/results/candidates.{json,md}``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import REPO, write_json, write_markdown
from bench._load import Server, build_requests, run_load

__all__ = ["measure_candidates"]

BARE = REPO / "bench" / "bare_function.py"
BARE_ASGI = REPO / "bench" / "bare_asgi.py"


def per_call(fn: Callable[[int], object], n: int, threads: int = 1) -> dict[str, float]:
    """CPU ms and wall ms per call, ``n`` calls from ``threads`` threads, after a warm-up."""
    for i in range(10):
        fn(-i - 1)
    counter = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            fn(i)

    cpu, wall = time.process_time(), time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms": round(1000 * cpu / n, 3), "wall_ms": round(1000 * wall * threads / n, 2)}


def measure_candidates(project: str, bucket: str, topic: str, n: int) -> dict[str, Any]:
    """Every candidate at concurrency 1 and 16 (the emulators must be running)."""
    from google.cloud import firestore, pubsub_v1, storage

    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import EventPublisher, message_data

    tag = secrets.token_hex(3)
    body = b'{"id":"evt","padding":"' + b"x" * 560 + b'"}'
    meta = {"provider_event_id": "evt", "scheme": "stripe", "received_at": "2026-01-01T00:00:00"}

    def record(i: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "source": "stripe",
            "scheme": "stripe",
            "provider_event_id": f"evt-{i}",
            "received_at": now,
            "raw_uri": f"gs://{bucket}/raw/x.json",
            "body_sha256": "ab" * 32,
            "status": "received",
            "attempts": 0,
            "last_error": None,
            "expire_at": now,
            "publish_claimed_at": now,
        }

    def name(kind: str, i: int) -> str:
        return hashlib.sha256(f"{tag}-{kind}-{i}-{secrets.token_hex(8)}".encode()).hexdigest()

    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005, max_messages=100)
    )
    path = publisher.topic_path(project, topic)
    gcs_bucket = storage.Client(project=project).bucket(bucket)
    db = firestore.Client(project=project)
    lib_events = db.collection("candidates")
    raw = RawStore(project, bucket, 10)
    records = EventRecords(project, "(default)", "candidates", 10)
    rest_publisher = EventPublisher(project, topic, 10)
    pool = ThreadPoolExecutor(32)

    def lib_publish(i: int) -> None:
        publisher.publish(path, message_data(name("p", i)), event_key="k", source="s").result(10)

    def gapic_publish(i: int) -> None:
        message = pubsub_v1.types.PubsubMessage(
            data=message_data(name("g", i)), attributes={"event_key": "k", "source": "s"}
        )
        publisher.api.publish(topic=path, messages=[message], timeout=10)

    def lib_upload(i: int) -> None:
        blob = gcs_bucket.blob(f"raw/lib/{name('u', i)}.json")
        blob.metadata = meta
        blob.upload_from_string(body, content_type="application/json", if_generation_match=0)

    def lib_create(i: int) -> None:
        lib_events.document(name("c", i)).create(record(i))

    def lib_update(i: int) -> None:
        ref = lib_events.document(name("t", i))
        created = ref.create({"status": "received"}).update_time
        ref.update(
            {"status": "published", "published_at": datetime.now(UTC)},
            option=db.write_option(last_update_time=created),
        )

    def rest_update(i: int) -> None:
        key = name("rt", i)
        created = records.create(key, {"status": "received"})
        if created is None:
            raise RuntimeError("not created")
        records.transition(key, created, {"status": "published", "published_at": datetime.now(UTC)})

    def rest_publish_alone(i: int) -> None:
        message: dict[str, object] = {
            "data": base64.b64encode(message_data(name("ra", i))).decode(),
            "attributes": {"event_key": "k", "source": "s"},
        }
        rest_publisher._send([message])

    def rest_commit_alone(i: int) -> None:
        write = records._write(
            records._name(name("ca", i)), record(i), mask=False, precondition={"exists": False}
        )
        records._commit(write)

    def pooled_overlap(i: int) -> None:
        stored = pool.submit(raw.put, f"raw/pool/{name('o', i)}.json", body, meta)
        records.create(name("oc", i), record(i))
        wait([stored])
        stored.result()

    def split_overlap(i: int) -> None:
        finish = raw.start_put(f"raw/split/{name('s', i)}.json", body, meta)
        records.create(name("sc", i), record(i))
        finish()

    cases: dict[str, tuple[str, Callable[[int], object]]] = {
        "publish, library batching (5 ms window)": ("pubsub", lib_publish),
        "publish, library direct GAPIC call": ("pubsub", gapic_publish),
        "publish, REST, one call per key": ("pubsub", rest_publish_alone),
        "publish, REST, concurrent keys grouped (hookpress)": (
            "pubsub",
            lambda i: rest_publisher.publish(name("r", i), "s"),
        ),
        "upload, google-cloud-storage": ("gcs", lib_upload),
        "upload, JSON API multipart, own HTTP/1.1 wire (hookpress)": (
            "gcs",
            lambda i: raw.put(f"raw/rest/{name('ru', i)}.json", body, meta),
        ),
        "create, google-cloud-firestore": ("firestore", lib_create),
        "create, REST commit, one call per record": ("firestore", rest_commit_alone),
        "create, REST batchWrite, concurrent records grouped (hookpress)": (
            "firestore",
            lambda i: records.create(name("rc", i), record(i)),
        ),
        "create + conditional update, library": ("firestore", lib_update),
        "create + conditional update, REST (hookpress)": ("firestore", rest_update),
        "upload ∥ create, thread pool": ("overlap", pooled_overlap),
        "upload ∥ create, split phase in one thread (hookpress)": ("overlap", split_overlap),
    }
    rows: dict[str, Any] = {}
    for label, (group, fn) in cases.items():
        rows[label] = {
            "group": group,
            "c1": per_call(fn, n),
            "c16": per_call(fn, n * 2, threads=16),
        }
    pool.shutdown()
    rows.update(_extras(n))
    return rows


def _extras(n: int) -> dict[str, Any]:
    """One log line; the per-request lookups (settings, secret cache, source, trace)."""
    from hookpress.backends.secrets import CachedSecrets
    from hookpress.logs import Logger, trace_field
    from hookpress.settings import IngressSettings

    settings = IngressSettings.from_env(
        {
            "HOOKPRESS_PROJECT": "p",
            "HOOKPRESS_RAW_BUCKET": "b",
            "HOOKPRESS_SOURCES": '{"stripe": {"scheme": "stripe"}}',
            "HOOKPRESS_SECRETS_BACKEND": "env",  # pragma: allowlist secret
        }
    )

    value = secrets.token_hex(16)

    class One:
        def fetch(self, name: str) -> tuple[str, ...]:
            return (value,)

    cache = CachedSecrets(One(), ttl_s=300, min_refresh_interval_s=30)
    log = Logger("ingress", io.StringIO())
    headers = {"x-cloud-trace-context": "0123456789abcdef0123456789abcdef/1;o=1"}

    def line(i: int) -> None:
        log.log(
            "INFO",
            "ingress accepted",
            source="stripe",
            event_key="ab" * 32,
            outcome="accepted",
            reason=None,
            http_status=202,
            duration_ms=1.23,
            trace=trace_field("p", headers),
        )

    def lookups(i: int) -> None:
        source = settings.sources.get("stripe")
        cache.get(source.secret if source else "")
        trace_field(settings.project, headers)

    return {
        "one JSON log line (the ingress's fields)": {
            "group": "request",
            "c1": per_call(line, n * 20),
        },
        "settings + source + cached secret + trace lookups": {
            "group": "request",
            "c1": per_call(lookups, n * 20),
        },
    }


def measure_servers(n: int, threads_for: Callable[[int], int]) -> dict[str, Any]:
    """The bare 202 in Flask mode and in ASGI mode, CPU of the server tree per request."""
    from hookpress.local.stack import generate_secret

    secrets_map = {"stripe": generate_secret("stripe")}
    schemes = {"stripe": "stripe"}
    out: dict[str, Any] = {}
    for c in (1, 16, 64):
        for label, source, env in (
            ("Flask (gunicorn threads)", BARE, {}),
            ("ASGI (functions_framework.aio, uvicorn)", BARE_ASGI, {"FUNCTION_USE_ASGI": "1"}),
        ):
            with Server(source, "accepted", env, workers=1, threads=threads_for(c)) as server:
                run_load(server.port, build_requests(50, "warm", secrets_map, schemes), 4)
                requests = build_requests(n, secrets.token_hex(3), secrets_map, schemes)
                result = run_load(server.port, requests, c, server)
            out.setdefault(label, {})[f"c{c}"] = result.figures()
    return out


def markdown(data: dict[str, Any]) -> str:
    """The tables."""
    lines = [
        "# Candidates (issue 12), measured one by one",
        "",
        "`nox -s bench -- --candidates`. CPU is `time.process_time` of the calling process",
        "(all its threads) per call; wall is per call as one caller sees it. Same emulators,",
        "one call at a time (c=1) and 16 threads at once (c=16).",
        "",
        "| candidate | CPU ms c=1 | wall ms c=1 | CPU ms c=16 | wall ms c=16 |",
        "|---|---|---|---|---|",
    ]
    for label, row in data["calls"].items():
        c16 = row.get("c16", {})
        lines.append(
            f"| {label} | {row['c1']['cpu_ms']} | {row['c1']['wall_ms']} "
            f"| {c16.get('cpu_ms', '—')} | {c16.get('wall_ms', '—')} |"
        )
    lines += [
        "",
        "## The server: a bare 202, CPU of the server process tree per request",
        "",
        "| mode | c | rps | p50 ms | CPU ms / request |",
        "|---|---|---|---|---|",
    ]
    for mode, levels in data["servers"].items():
        for level, f in levels.items():
            lines.append(
                f"| {mode} | {level[1:]} | {f['throughput_rps']} | {f['p50_ms']} "
                f"| {f['cpu_ms_per_request']} |"
            )
    return "\n".join(lines) + "\n"


def run(project: str, bucket: str, topic: str, out_dir: Path, n: int) -> dict[str, Any]:
    """Measure, write ``candidates.{json,md}``."""
    data = {
        "calls": measure_candidates(project, bucket, topic, n),
        "servers": measure_servers(n * 10, lambda c: max(8, c)),
    }
    write_json(out_dir / "candidates.json", data)
    write_markdown(out_dir / "candidates.md", markdown(data))
    return data
