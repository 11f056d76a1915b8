"""The ingress under functions-framework against the real emulators."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore, pubsub_v1, storage
from starlette.testclient import TestClient

from hookpress import ingress
from hookpress.local.emulators import Emulators, ensure_bucket, ensure_topic
from hookpress.local.framework import FunctionProcess
from hookpress.logs import read_records
from hookpress.signatures import SCHEMES
from tests.conftest import FUNCTIONS
from tests.local_http import Authority
from tests.tls_front import TLSFront, trust_bundle, trust_directory

BUCKET = "hookpress-raw-test"
TOPIC = "events"
SECRETS = {
    "hmac-timestamp": ["provider-secret-new", "provider-secret-old"],
    "standard-webhooks": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    "stripe": ["whsec_stripe_test_secret"],
    "github": ["It's a Secret to Everybody"],
    "slack": ["8f742231b10e8888abcd99yyyzzz85a5"],
    "shopify": ["shpss_test_secret"],
}


@pytest.fixture(scope="session")
def ingress_env(emulators: Emulators, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ingress configuration: one source per scheme, named after it; secrets from a file."""
    secrets_file = tmp_path_factory.mktemp("secrets") / "secrets.json"
    secrets_file.write_text(json.dumps({f"src-{k}": v for k, v in SECRETS.items()}))
    ensure_topic(emulators.project, TOPIC)
    ensure_bucket(emulators.project, BUCKET)
    return {
        "HOOKPRESS_PROJECT": emulators.project,
        "HOOKPRESS_SOURCES": json.dumps(
            {name: {"scheme": name, "secret": f"src-{name}"} for name in SECRETS}
        ),
        "HOOKPRESS_RAW_BUCKET": BUCKET,
        "HOOKPRESS_EVENTS_TOPIC": TOPIC,
        "HOOKPRESS_SECRETS_BACKEND": "file",
        "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        # Generous: a first call on a loaded machine (channel set-up, a cold emulator)
        # took more than 5 s and answered 503; no test here waits on this timeout.
        "HOOKPRESS_BACKEND_TIMEOUT_S": "20",
    }


@pytest.fixture(scope="session")
def ingestor(ingress_env: dict[str, str]) -> ingress.Ingestor:
    return ingress.build_ingestor(ingress_env)


@pytest.fixture(scope="session")
def app(ingress_env: dict[str, str]) -> Any:
    """The ingress as functions-framework serves it: a Starlette (ASGI) app, for the
    entry point is a ``functions_framework.aio.http`` function."""
    import functions_framework

    return functions_framework.create_app(
        target="ingress", source=str(FUNCTIONS / "ingress" / "main.py")
    )


def http_client(app: Any) -> TestClient:
    """Starlette's test client of ``app``: httpx in front, the app run on an event loop of
    its own in another thread. One per thread: share none between threads."""
    return TestClient(app)


@pytest.fixture
def client(app: Any, ingestor: ingress.Ingestor) -> Iterator[TestClient]:
    """The real entry point's test client, wired to the emulators."""
    ingress.install(ingestor)
    with http_client(app) as opened:
        yield opened
    ingress.install(None)


Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class AsgiAnswer:
    """What an ASGI app sent back: its status, headers (names lower-case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Body:
    """A request body handed to the app ``chunk`` bytes a message, as a server would, counting
    what it handed out. ``disconnect_after``: the client goes away after that many bytes."""

    data: bytes
    chunk: int = 64 * 1024
    disconnect_after: int | None = None
    handed_out: int = 0

    async def __call__(self) -> dict[str, Any]:
        end = len(self.data) if self.disconnect_after is None else self.disconnect_after
        if self.handed_out >= end:
            # all of it was handed out (a server says so once the answer is sent),
            # or the client went away
            return {"type": "http.disconnect"}
        start = self.handed_out
        self.handed_out = min(start + self.chunk, end)
        more = self.handed_out < len(self.data)
        return {
            "type": "http.request",
            "body": self.data[start : self.handed_out],
            "more_body": more,
        }


def call_asgi(
    app: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    receive: Receive,
    query: bytes = b"",
) -> AsgiAnswer:
    """One request through ``app`` at the ASGI level, as uvicorn would make it: the path as
    sent (no client normalises it) and the body as ``receive`` hands it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "root_path": "",
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return AsgiAnswer(start["status"], names, body)


def variant(base: ingress.Ingestor, **parts: Any) -> ingress.Ingestor:
    """The same ingestor with some adapters replaced (a failing or slow one, say)."""
    deps = {
        "secrets": base.secrets,
        "raw": base.raw,
        "records": base.records,
        "publisher": base.publisher,
        "log": base.log,
    }
    deps.update(parts)
    return ingress.Ingestor(base.settings, **deps)


@pytest.fixture
def use(ingestor: ingress.Ingestor) -> Iterator[Any]:
    """``use(raw=...)`` installs a variant of the session's ingestor for one test."""

    def install(**parts: Any) -> ingress.Ingestor:
        chosen = variant(ingestor, **parts)
        ingress.install(chosen)
        return chosen

    yield install
    ingress.install(None)


@dataclass
class Backends:
    """What landed where: the bucket, the events collection, the topic."""

    project: str
    subscription: str
    subscriber: pubsub_v1.SubscriberClient
    db: firestore.Client
    bucket: storage.Bucket

    def record(self, key: str) -> dict[str, Any] | None:
        snap = self.db.collection("events").document(key).get()
        return snap.to_dict() if snap.exists else None

    def wait_status(self, key: str, status: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The record once it has ``status`` (the ingress marks ``published`` off its path)."""
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.record(key)
            if record is not None and record.get("status") == status:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} is {record and record.get('status')}, not {status}")
            time.sleep(0.05)

    def object(self, name: str) -> bytes | None:
        try:
            data: bytes = self.bucket.blob(name).download_as_bytes()
        except gexc.NotFound:
            return None
        return data

    def object_names(self) -> set[str]:
        return {b.name for b in self.bucket.list_blobs()}

    def record_keys(self) -> set[str]:
        return {d.id for d in self.db.collection("events").list_documents()}

    def messages(self, settle_s: float = 1.0) -> list[pubsub_v1.types.PubsubMessage]:
        """Every message published since the test began (pulled and acked)."""
        received: list[Any] = []
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            try:
                resp = self.subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": 100},
                    timeout=settle_s,
                )
            except gexc.DeadlineExceeded:
                continue
            if resp.received_messages:
                received.extend(m.message for m in resp.received_messages)
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [m.ack_id for m in resp.received_messages],
                    }
                )
                deadline = time.monotonic() + settle_s
            else:
                time.sleep(0.05)
        return received


@pytest.fixture
def backends(emulators: Emulators, ingress_env: dict[str, str], request: Any) -> Iterator[Backends]:
    """A fresh pull subscription on the topic, so the test sees only its own messages."""
    subscriber = pubsub_v1.SubscriberClient()
    name = f"test-{abs(hash(request.node.nodeid)) % 10**12}-{time.monotonic_ns()}"
    path = subscriber.subscription_path(emulators.project, name)
    subscriber.create_subscription(
        request={"name": path, "topic": f"projects/{emulators.project}/topics/{TOPIC}"}
    )
    yield Backends(
        project=emulators.project,
        subscription=path,
        subscriber=subscriber,
        db=firestore.Client(project=emulators.project),
        bucket=storage.Client(project=emulators.project).bucket(BUCKET),
    )
    subscriber.delete_subscription(request={"subscription": path})


def signed(source: str, body: bytes, *, now: float | None = None, **kw: Any) -> dict[str, str]:
    """Headers a provider of ``source``'s scheme would send."""
    headers = SCHEMES[source].sign(body, SECRETS[source][0], now=now or time.time(), **kw)
    return {"Content-Type": "application/json", **headers}


def unique_body(tag: str = "evt", **fields: Any) -> bytes:
    return json.dumps(
        {"id": f"{tag}_{time.monotonic_ns()}", "type": "test.event", **fields}
    ).encode()


def repo_path(*parts: str) -> Path:
    return FUNCTIONS.parent.joinpath(*parts)


@contextlib.contextmanager
def behind_held_fronts(
    name: str, env: dict[str, str], fronts: dict[str, TLSFront], authority: Authority, tmp: Path
) -> Iterator[FunctionProcess]:
    """Function ``name`` served by functions-framework with ``env`` (which points its services
    at ``fronts``), trusting ``authority``, every front holding each handshake from now on:
    an instance whose first request starts warming threads that wait mid-handshake. Stopped,
    and the fronts closed, on the way out."""
    env = {
        **env,
        "SSL_CERT_FILE": trust_bundle(authority, tmp / "bundle.pem"),
        "SSL_CERT_DIR": trust_directory(authority, tmp / "cas"),
    }
    try:
        for front in fronts.values():
            front.hold()
        process = FunctionProcess(name, name, env, tmp / f"{name}.log")
        process.start()
        try:
            yield process
        finally:
            process.stop()
    finally:
        for front in fronts.values():
            front.close()


def handshakes_end_while_stopped(
    server: FunctionProcess, fronts: dict[str, TLSFront], *, drop: bool
) -> None:
    """With ``server`` stopped (no CPU, as Cloud Run leaves an instance between requests),
    each front finishes the handshakes it held or, with ``drop``, drops them; then the CPU
    comes back."""
    server.pause()
    try:
        for front in fronts.values():
            front.release(drop=drop)
        time.sleep(0.2)  # the fronts' side of the handshakes done while the instance is stopped
    finally:
        server.resume()


def assert_quiet(server: FunctionProcess, key: str, outcome: str) -> None:
    """No traceback from any thread, nothing above INFO, and one line about event ``key``,
    with ``outcome``."""
    text = server.log_path.read_text()
    assert "Traceback" not in text, text
    records = list(read_records(text.splitlines()))
    assert not [r for r in records if r.get("severity") in {"ERROR", "CRITICAL"}], records
    assert [r.get("outcome") for r in records if r.get("event_key") == key] == [outcome], records
