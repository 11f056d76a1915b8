"""The public edge under hostile input: 10,000 hypothesis cases against the real entry point.

The engine is the ``bench/fuzz`` package (``nox -s fuzz`` runs 100,000 cases with it);
here it runs against the session's emulators with a fixed seed, so a failure
reproduces. ``HOOKPRESS_FUZZ_SEED`` picks another seed.

The fuzzer calls functions-framework's ASGI app directly, with the scope and
body messages it builds as uvicorn would; the first test holds that model to
uvicorn itself, reading the same bytes from a socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.fuzz import SOURCES, Case, IngressFuzzer, Strategies, genuine, run
from bench.fuzz.oracle import FRAMEWORK, INGRESS, SERVER
from bench.fuzz.strategies import _METHODS, _TARGETS
from bench.fuzz.target import (
    body_messages,
    build_scope,
    hypothesis_run,
    server_refuses,
    wire_request,
)
from hookpress.signatures import SCHEMES

CASES = 10_000
BATCH = 1_000  # ten RSS samples: the growth takes medians of two, not one (a lone spike)
SEED = int(os.environ.get("HOOKPRESS_FUZZ_SEED", "6"))
MAX_RSS_GROWTH_MIB = 64
#: the scope's parts uvicorn fills from the request (not its addresses or its state)
SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "scheme",
    "root_path",
    "method",
    "path",
    "raw_path",
    "query_string",
    "headers",
)


class Capture:
    """An ASGI app that keeps what uvicorn hands it: the scope and the body messages."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        self.seen.append((dict(scope), messages))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def uvicorn_serving(app: Any) -> Iterator[int]:
    """uvicorn with httptools, as the deployed worker runs it, on a free local port."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http="httptools",
        lifespan="off",
        log_level="critical",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def over_the_wire(port: int, case: Case) -> bytes:
    """Write the case's bytes to uvicorn; the head of what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(wire_request(case))
        if case.cut_short:
            sock.shutdown(socket.SHUT_WR)  # declared more than it sent: it gives up
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_the_fuzzer_hands_the_app_what_uvicorn_hands_it():
    """Scope, body and refusals of the fuzzer's model equal uvicorn's (httptools) own."""
    from hookpress.local.stack import generate_keys

    keys = {s: [generate_keys(s).verify, generate_keys(s).verify] for s in SOURCES}
    capture = Capture()
    checked: dict[str, int] = {"app": 0, "refused": 0}

    def check(case: Case) -> None:
        before = len(capture.seen)
        answer = over_the_wire(port, case)
        if server_refuses(case):
            assert answer.startswith(b"HTTP/1.1 400 "), (case.describe(), answer[:80])
            time.sleep(0.01)
            assert len(capture.seen) == before, case.describe()
            checked["refused"] += 1
            return
        deadline = time.monotonic() + 5
        while len(capture.seen) == before:
            assert time.monotonic() < deadline, f"never reached the app: {case.describe()}"
            time.sleep(0.001)
        scope, messages = capture.seen[-1]
        model = build_scope(case)
        for key in SCOPE_KEYS:
            assert scope[key] == model[key], (key, case.describe())
        body = b"".join(m.get("body", b"") for m in messages)
        expected = body_messages(case)
        sent = b"".join(m["body"] for m in expected)
        if case.cut_short:
            # uvicorn may hand over what it buffered, or only the disconnect
            assert messages[-1]["type"] == "http.disconnect", case.describe()
            assert sent.startswith(body), case.describe()
        else:
            assert messages[-1] == {"type": "http.request", "body": messages[-1]["body"],
                                    "more_body": False}, case.describe()  # fmt: skip
            assert body == sent, case.describe()
        checked["app"] += 1

    edges = [
        Case("edge", method, target.format(s="stripe"), [("X-Pad", " \tpadded\t ")], b"{}")
        for target in _TARGETS
        for method in ("POST", *_METHODS)
    ]
    with uvicorn_serving(capture) as port:
        for case in edges:
            check(case)
        hypothesis_run(Strategies(keys).cases(), check, 300, SEED)
    assert checked["app"] > 200
    assert checked["refused"] > 20


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
    # ... and every layer in front of the function: Starlette's routes, uvicorn's parser
    assert all(report.by[who] for who in (INGRESS, FRAMEWORK, SERVER)), report.by
    audit = report.audit
    # every object is an accepted event's, or a GitHub/Shopify copy's own upload (kept:
    # the ingress never deletes) whose body's marker names an accepted event
    assert audit["gcs_objects"] - audit["copy_objects"] == audit["firestore_records"]
    assert audit["firestore_records"] == audit["accepted_keys"]
    assert report.rss_growth_mib < MAX_RSS_GROWTH_MIB, report.rss_mib
