"""The ingress through a real server: functions-framework serving ``functions/ingress/main.py``
in its ASGI mode (uvicorn's gunicorn worker), on 127.0.0.1, as Cloud Run runs it.

What only a server shows: that a refused upload is not read to its end (the answer says
``Connection: close`` and uvicorn closes the connection with the rest unread), that a
consumed body leaves the connection open for the next request, and that uvicorn runs on
the C parser and event loop the function's requirements pin. And what an instance does
with no CPU between requests, as Cloud Run leaves it: the `published` mark after a 202,
and the connections a first request started warming.
"""

from __future__ import annotations

import gzip
import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hookpress.backends._rest import endpoint_url
from hookpress.ingress import Ingestor
from hookpress.local.framework import FunctionProcess
from hookpress.logs import read_records
from tests.integration.conftest import (
    Backends,
    assert_quiet,
    behind_held_fronts,
    handshakes_end_while_stopped,
    signed,
    unique_body,
)
from tests.integration.test_ingress import assert_nothing_landed, snapshot
from tests.integration.test_ingress_tls import EMULATED
from tests.local_http import Authority
from tests.tls_front import TLSFront

HOST = "127.0.0.1"
CHUNK = 64 * 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(
    ingress_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionProcess]:
    """The ingress under functions-framework, configured as the integration tier's."""
    log = tmp_path_factory.mktemp("ingress-server") / "ingress.log"
    process = FunctionProcess("ingress", "ingress", dict(ingress_env), log)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-case
    body: bytes


def parse(data: bytes) -> Answer:
    """One HTTP/1.1 answer with a Content-Length (every ingress answer has one)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    assert len(rest) >= length, data
    return Answer(int(status_line.split()[1]), headers, rest[:length])


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_to_the_end(sock: socket.socket, timeout_s: float = 10.0) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it then closed the connection (EOF or a
    reset) within ``timeout_s``: False if it was still open, waiting for a next request."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        pass
    return data, True


def test_a_refused_chunked_upload_is_answered_and_cut_off_long_before_its_end(
    server: FunctionProcess, ingestor: Ingestor, backends: Backends
):
    """A chunked upload with no end in sight: 413 once the body passed the limit, with
    ``Connection: close``, and the connection closed with the rest unread.

    What the client can have sent when the answer comes, and when the connection closes:
    the limit (1 MiB, read by the app), what uvicorn takes off the socket before it stops
    reading (its 64 KiB high-water mark, plus one socket read of up to 256 KiB), and then
    what the two kernel buffers between the sockets take once nobody reads: the client's
    send buffer, fixed here (SO_SNDBUF 256 KiB, which the kernel doubles), and the server
    socket's receive buffer, which Linux's autotuning grows only as the server reads from it
    (from tcp_rmem's default, 128 KiB), so to a few MiB at most once the server has read a
    little over 1 MiB, however high tcp_rmem's maximum. Measured on loopback: about 1.6 MiB
    sent when the answer came, 2 MiB when the connection closed. 16 MiB leaves room for a
    loaded machine and is a quarter of the 64 MiB the client would send: had the server
    gone on reading, it would be far past it.
    """
    limit = ingestor.settings.max_body_bytes
    total, bound = 64 * MiB, 16 * MiB
    assert limit + 320 * 1024 + 512 * 1024 < bound
    before = snapshot(backends)
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={int(time.time())},v1=" + "a" * 64,
        "Transfer-Encoding": "chunked",
    }
    frame = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    with socket.create_connection((HOST, server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        sock.sendall(request_head("POST", "/stripe", headers))
        sock.setblocking(False)
        sent = 0  # body bytes on the wire (chunk framing included)
        pending = memoryview(b"")
        received = b""
        sent_at_answer: int | None = None
        sent_at_close: int | None = None
        writable = True
        deadline = time.monotonic() + 60
        while sent_at_close is None and time.monotonic() < deadline:
            want = [sock] if writable and sent < total else []
            readable, can_write, _ = select.select([sock], want, [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    sent_at_close = sent
                    break
                received += data
                if sent_at_answer is None and b"\r\n\r\n" in received:
                    sent_at_answer = sent
            if can_write:
                if not pending:
                    pending = memoryview(frame)
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    writable = False  # the server is gone: read what it said, then the EOF
                    continue
                pending = pending[n:]
                sent += n
    log = Path(server.log_path).read_text(errors="replace")[-4000:]
    assert sent_at_answer is not None, (sent, received, log)
    assert sent_at_close is not None, f"still open after {sent} bytes sent"
    answer = parse(received)
    assert answer.status == 413
    assert json.loads(answer.body) == {"status": "rejected", "error": "body too large"}
    assert answer.headers["connection"] == "close"
    assert sent_at_answer < bound, (sent_at_answer, bound)
    assert sent_at_close < bound, (sent_at_close, bound)
    assert_nothing_landed(backends, before)


def test_a_compressed_body_is_415_and_the_connection_closed(
    server: FunctionProcess, backends: Backends
):
    before = snapshot(backends)
    body = gzip.compress(unique_body())
    headers = {
        **signed("stripe", body),
        "Content-Encoding": "gzip",
        "Content-Length": str(len(body)),
    }
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(request_head("POST", "/stripe", headers) + body)
        data, closed = read_to_the_end(sock)
    answer = parse(data)
    assert answer.status == 415
    assert json.loads(answer.body) == {
        "status": "rejected",
        "error": "unsupported content encoding",
    }
    assert answer.headers["connection"] == "close"
    assert closed, "the connection was left open"
    assert_nothing_landed(backends, before)


def test_an_accepted_event_keeps_the_connection_for_the_next_request(
    server: FunctionProcess, backends: Backends
):
    """Both bodies read whole: no ``Connection: close``, and the second request goes over
    the same connection. ``server: uvicorn``: the ASGI mode's server answered, not gunicorn's
    threads (functions-framework's default mode)."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        keys = []
        sock = None
        for _ in range(2):
            body = unique_body()
            conn.request("POST", "/stripe", body=body, headers=signed("stripe", body))
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            assert resp.status == 202, answer
            assert answer["status"] == "accepted"
            assert resp.getheader("connection") is None
            assert resp.getheader("server") == "uvicorn"
            assert not resp.will_close
            assert conn.sock is not None
            assert sock is None or conn.sock is sock, "a new connection for the second request"
            sock = conn.sock
            keys.append(answer["event_id"])
    finally:
        conn.close()
    for key in keys:
        assert backends.wait_status(key, "published")["source"] == "stripe"


def test_uvicorn_runs_on_httptools_and_uvloop(server: FunctionProcess, backends: Backends):
    """functions/ingress/requirements.txt pins both; uvicorn's "auto" choice (the worker's)
    imports each only to use it, so each one's C extension is mapped in the worker."""
    import psutil

    body = unique_body()
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("POST", "/stripe", body=body, headers=signed("stripe", body))
        assert conn.getresponse().status == 202
    finally:
        conn.close()
    assert server.pid is not None
    workers = psutil.Process(server.pid).children(recursive=True)
    assert workers, "no gunicorn worker"
    for worker in workers:
        maps = Path(f"/proc/{worker.pid}/maps").read_text()
        assert "/httptools/parser/parser." in maps, worker
        assert "/uvloop/loop." in maps, worker


# -- an instance without CPU between requests ------------------------------------------------
#
# Under request-based billing (what the program deploys: it sets no instance-based billing)
# Cloud Run takes an instance's CPU away once it has answered: "when the Cloud Run service
# finishes handling a request, the instance's access to CPU will be disabled or severely
# limited", and "any subsequent request to the same container instance resumes any suspended
# background activity" (https://cloud.google.com/run/docs/tips/general, "Background
# activity"). functions-framework on this machine never does. The one write the ingress
# leaves after its 202 is the record's `published` mark, queued to ride with the next batch
# of Firestore writes or go alone 0.1 s later (README, "`published` is marked off the ingress
# request path"). Here the server's process group is stopped (SIGSTOP) right after its answer
# and continued (SIGCONT) before its next request: the mark's thread gets no CPU in between.


def _accept(server: FunctionProcess, timeout_s: float = 30) -> str:
    """POST one new Stripe event; its key, once answered 202 within ``timeout_s``."""
    body = unique_body("paused")
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout_s)
    try:
        conn.request("POST", "/stripe", body=body, headers=signed("stripe", body))
        resp = conn.getresponse()
        answer = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 202, answer
    key: str = answer["event_id"]
    return key


def _lines_about(server: FunctionProcess, key: str) -> list[dict[str, object]]:
    """The server's log records about event ``key``."""
    lines = server.log_path.read_text().splitlines()
    return [record for record in read_records(lines) if record.get("event_key") == key]


def test_with_no_cpu_after_its_answer_the_mark_goes_when_the_cpu_comes_back(
    server: FunctionProcess, backends: Backends
):
    """Nobody moved the record while the instance had no CPU: the mark lands once it has."""
    key = _accept(server)
    server.pause()
    try:
        time.sleep(0.5)  # five times the mark's 0.1 s: it would have gone out by now
        while_paused = backends.record(key)
    finally:
        server.resume()
    assert while_paused is not None
    assert while_paused["status"] in {"received", "published"}  # "published": it beat SIGSTOP
    following = _accept(server)  # the next request, which the platform gives CPU to
    assert backends.wait_status(key, "published")["status"] == "published"
    assert backends.wait_status(following, "published")["source"] == "stripe"


def test_a_mark_late_for_lack_of_cpu_leaves_a_record_deliver_moved_on(
    server: FunctionProcess, backends: Backends
):
    """deliver took the event while the instance had no CPU: once the CPU is back, the mark
    (conditional on the record being as the ingress created it) is refused and dropped
    without a word, and the record stays `delivered`: no warning for the on-call engineer,
    no status going backwards."""
    key = _accept(server)
    server.pause()
    try:
        # deliver's write for a delivered event (hookpress.deliver: Deliverer.deliver)
        now = datetime.now(UTC)
        backends.db.collection("events").document(key).update(
            {"status": "delivered", "delivered_at": now, "updated_at": now}
        )
    finally:
        server.resume()
    following = _accept(server)
    assert backends.wait_status(following, "published")["source"] == "stripe"
    time.sleep(0.3)  # past the mark's own 0.1 s, had the next batch not carried it
    assert backends.record(key)["status"] == "delivered"  # type: ignore[index]
    about = _lines_about(server, key)
    assert [line["severity"] for line in about] == ["INFO"], about  # its 202's line alone


# -- warming threads without CPU --------------------------------------------------------------
#
# An instance's first request starts, in threads of their own, the connections its pipeline
# will need (README, "An instance's first request opens its connections ahead"). A first
# request answered at once, a 401 here, leaves those threads mid-handshake when Cloud Run
# takes the CPU away (the rule above); by the time the next request brings it back, the
# server at the other end may have shaken hands or given up on a client gone quiet. Here
# each backend is behind an HTTPS front (tests/tls_front.py) that holds new handshakes: the
# warming threads send their hellos and wait, the instance is stopped, the fronts let the
# handshakes go ahead or drop them, and the instance is continued with the next event.


@pytest.fixture
def held_instance(
    emulators, ingress_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[FunctionProcess, dict[str, TLSFront]]]:
    """A new ingress instance whose backends are behind holding HTTPS fronts (by service)."""
    authority = Authority("hookpress test CA")
    fronts = {
        service: TLSFront(endpoint_url(service, emulators.env)[0], authority, tmp_path / service)
        for service in EMULATED
    }
    env = {**ingress_env, **{EMULATED[service]: front.url() for service, front in fronts.items()}}
    with behind_held_fronts("ingress", env, fronts, authority, tmp_path) as process:
        yield process, fronts


def _first_request_refused_with_handshakes_held(
    server: FunctionProcess, fronts: dict[str, TLSFront]
) -> None:
    """The instance's first request, a Stripe event signed over another body: a 401,
    answered while each warming thread waits on its front's handshake."""
    body = unique_body("held")
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("POST", "/stripe", body=body, headers=signed("stripe", b"another body"))
        assert conn.getresponse().status == 401
    finally:
        conn.close()
    held = {service: front.wait_held(1, 10) for service, front in fronts.items()}
    assert held == dict.fromkeys(fronts, 1)


@pytest.mark.parametrize("drop", [False, True], ids=["handshaken-meanwhile", "dropped-meanwhile"])
def test_warming_suspended_after_a_fast_first_answer_serves_the_next_event(
    held_instance: tuple[FunctionProcess, dict[str, TLSFront]],
    ingress_env: dict[str, str],
    backends: Backends,
    drop: bool,
):
    """Handshaken meanwhile: the next event goes out on the connections warmed before it
    (no front accepts another). Dropped meanwhile: each warming thread meets the reset when
    its CPU is back and lets go; the next event opens its own connections and is accepted
    well inside the backend timeout a thread left waiting on a dead handshake would take."""
    server, fronts = held_instance
    _first_request_refused_with_handshakes_held(server, fronts)
    handshakes_end_while_stopped(server, fronts, drop=drop)
    timeout_s = float(ingress_env["HOOKPRESS_BACKEND_TIMEOUT_S"])
    key = _accept(server, timeout_s / 2)
    record = backends.wait_status(key, "published")
    assert backends.object(urlsplit(record["raw_uri"]).path.lstrip("/")) is not None
    assert [json.loads(m.data) for m in backends.messages()] == [{"event_key": key}]
    # each front: the warming thread's connection, and after a drop the event's own
    expected = (2, 1) if drop else (1, 1)
    counts = {service: (front.accepted, front.connections) for service, front in fronts.items()}
    assert counts == dict.fromkeys(fronts, expected)
    assert_quiet(server, key, "accepted")
