"""The JSON API transport: keep-alive, stale connections, retries only where safe, overlap,
and one TLS context for every endpoint of the process."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509

from hookpress.backends import BackendError
from hookpress.backends._rest import Endpoint, endpoint_url
from tests.local_http import LOOPBACK, Authority, ScriptedServer, json_reply
from tests.tls_front import fresh_system_tls, trust_directory


class Backend:
    """A local HTTP/1.1 server whose answers the test scripts; it counts what it saw."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections = 0
        self.script: list[Callable[[BaseHTTPRequestHandler], None]] = []
        self.default: Callable[[BaseHTTPRequestHandler], None] = answer(200, b'{"ok":true}')
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                backend.connections += 1

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                backend.requests.append((self.command, self.path, dict(self.headers), body))
                step = backend.script.pop(0) if backend.script else backend.default
                step(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def answer(status: int, body: bytes = b"{}", delay: float = 0.0, close: bool = False):
    def step(handler: BaseHTTPRequestHandler) -> None:
        if delay:
            time.sleep(delay)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        if close:  # close without saying so: the client finds out when it next uses it
            handler.close_connection = True

    return step


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """Read the request, then drop the connection without an answer."""
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    b.thread.start()
    yield b
    b.server.shutdown()
    b.server.server_close()


def test_requests_reuse_one_kept_alive_connection(backend):
    endpoint = Endpoint("gcs", backend.url, 5)
    for _ in range(3):
        assert endpoint.request("GET", "/x").status == 200
    assert backend.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_used(backend):
    backend.script = [answer(200, close=True)]
    endpoint = Endpoint("gcs", backend.url, 5)
    assert endpoint.request("GET", "/first").status == 200
    time.sleep(0.1)  # the server has closed its end by now
    assert endpoint.request("POST", "/second", b"x").status == 200
    assert [r[1] for r in backend.requests] == ["/first", "/second"]
    assert backend.connections == 2


def test_refused_answers_are_retried_with_backoff(backend):
    backend.script = [answer(503), answer(429)]
    endpoint = Endpoint("pubsub", backend.url, 5)
    started = time.monotonic()
    result = endpoint.request("POST", "/publish", b"{}")
    assert result.status == 200
    assert len(backend.requests) == 3
    assert time.monotonic() - started >= 0.05  # at least one backoff


def test_retries_stop_at_the_deadline_with_the_last_answer(backend):
    backend.default = answer(503)
    endpoint = Endpoint("pubsub", backend.url, 0.3)
    started = time.monotonic()
    assert endpoint.request("POST", "/publish", b"{}").status == 503
    assert time.monotonic() - started < 1.0
    assert len(backend.requests) >= 2


def test_an_answer_lost_after_the_request_went_out_is_not_retried(backend):
    """The write may have happened: the caller decides, the transport does not repeat it."""
    backend.script = [hang_up]
    endpoint = Endpoint("firestore", backend.url, 5)
    with pytest.raises(BackendError) as err:
        endpoint.request("POST", "/v1/commit", b"{}")
    assert err.value.backend == "firestore"
    time.sleep(0.1)
    assert len(backend.requests) == 1


def test_an_unreachable_host_is_a_backend_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        endpoint = Endpoint("gcs", f"http://127.0.0.1:{port}", 2)
        with pytest.raises(BackendError) as err:
            endpoint.request("GET", "/x")
    assert err.value.backend == "gcs"


def test_two_calls_overlap_in_one_thread(backend):
    backend.default = answer(200, delay=0.3)
    one, two = Endpoint("gcs", backend.url, 5), Endpoint("firestore", backend.url, 5)
    started = time.monotonic()
    first = one.send("POST", "/upload", b"bytes")
    second = two.request("POST", "/commit", b"{}")
    assert first.result().status == 200
    assert second.status == 200
    assert time.monotonic() - started < 0.55  # two 0.3 s answers, overlapped


def test_the_authorization_header_is_asked_for_on_every_request(backend):
    tokens = iter(["Bearer one", "Bearer two"])
    endpoint = Endpoint("gcs", backend.url, 5, lambda: next(tokens))
    endpoint.request("GET", "/a")
    endpoint.request("GET", "/b")
    assert [r[2]["Authorization"] for r in backend.requests] == ["Bearer one", "Bearer two"]


def test_endpoints_follow_the_emulator_variables_the_libraries_read():
    assert endpoint_url("gcs", {}) == ("https://storage.googleapis.com", False)
    assert endpoint_url("firestore", {}) == ("https://firestore.googleapis.com", False)
    assert endpoint_url("pubsub", {}) == ("https://pubsub.googleapis.com", False)
    env = {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443/",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080",
        "PUBSUB_EMULATOR_HOST": "localhost:8085",
    }
    assert endpoint_url("gcs", env) == ("http://127.0.0.1:4443", True)
    assert endpoint_url("firestore", env) == ("http://127.0.0.1:8080", True)
    assert endpoint_url("pubsub", env) == ("http://localhost:8085", True)


class Scripted:
    """A raw TCP server: reads one request per answer and writes the scripted bytes back."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.sock.accept()
            with conn:
                buf = b""
                while self.answers:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buf = rest[length:]
                    answer = self.answers.pop(0)
                    conn.sendall(answer)
                    if b"Connection: close" in answer or (
                        b"Content-Length" not in answer and (b"chunked" not in answer)
                    ):
                        break

    def close(self) -> None:
        self.sock.close()


def test_a_chunked_answer_with_an_interim_100_is_read_whole():
    server = Scripted(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;ext=1\r\n{"a":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    )
    try:
        endpoint = Endpoint("pubsub", server.url, 5)
        first = endpoint.request("POST", "/x", b"{}")
        assert (first.status, first.json(), first.content_type) == (
            200,
            {"a": 1},
            "application/json",
        )
        assert endpoint.request("GET", "/y").json() == {}  # the same connection, still in step
    finally:
        server.close()


def test_an_answer_without_a_length_is_read_to_the_close():
    server = Scripted(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"done": true}')
    try:
        assert Endpoint("gcs", server.url, 5).request("GET", "/x").json() == {"done": True}
    finally:
        server.close()


def test_a_request_goes_out_in_one_piece_with_its_length():
    server = Scripted(b"HTTP/1.1 204 No Content\r\n\r\n")
    try:
        body = b"x" * 5000  # above http.client's 2,000-byte limit for one write
        answer = Endpoint("firestore", server.url, 5, lambda: "Bearer t").request(
            "POST", "/v1/commit", body, {"Content-Type": "application/json"}
        )
    finally:
        server.close()
    assert answer.status == 204
    (request,) = server.requests
    head, _, sent = request.partition(b"\r\n\r\n")
    assert sent == body
    assert head.startswith(b"POST /v1/commit HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 5000" in head
    assert b"\r\nAuthorization: Bearer t" in head
    assert b"\r\nHost: 127.0.0.1:" in head


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort",
    ],
)
def test_a_peer_that_does_not_speak_http_is_a_backend_error(answer):
    server = Scripted(answer)
    try:
        with pytest.raises(BackendError) as err:
            Endpoint("gcs", server.url, 2).request("GET", "/x")
    finally:
        server.close()
    assert err.value.backend == "gcs"


def test_a_header_value_cannot_smuggle_a_second_line():
    endpoint = Endpoint("gcs", "http://127.0.0.1:9", 1)
    with pytest.raises(ValueError, match="CR or LF"):
        endpoint.send("GET", "/x", None, {"X-Evil": "a\r\nHost: elsewhere"})


# -- TLS: the system's CA set, shared by the process -------------------------------------------


@pytest.fixture
def system_tls(monkeypatch, tmp_path):
    """The process's shared contexts made afresh for this test; a test CA, ``authority``,
    trusted through the CA directory (``SSL_CERT_DIR``, read lazily) and nothing in the
    bundle file (``SSL_CERT_FILE``); each context made, to count."""
    authority = Authority("hookpress test CA")
    monkeypatch.setenv("SSL_CERT_DIR", trust_directory(authority, tmp_path / "cas", system=False))
    monkeypatch.setenv("SSL_CERT_FILE", Authority("not trusted here").pem(tmp_path / "other.pem"))
    return authority, fresh_system_tls(monkeypatch)


def _tls_server(authority: Authority, tmp_path, names=LOOPBACK) -> ScriptedServer:
    return ScriptedServer(
        lambda _seen, status: json_reply(status, {}), authority.server_context(tmp_path, names)
    )


def test_every_endpoint_of_the_process_shares_one_tls_context(system_tls, tmp_path):
    # A context that loads the CA bundle parses all of it (~20 ms on OpenSSL 3.0): the
    # ingress's first event in the cloud opens TLS to four APIs, and once made four.
    authority, made = system_tls
    servers = [_tls_server(authority, tmp_path) for _ in range(3)]
    try:
        endpoints = [
            Endpoint(service, server.url("127.0.0.1", "https"), 5)
            for service, server in zip(("gcs", "firestore", "pubsub"), servers, strict=True)
        ]
        threads = [
            threading.Thread(target=endpoint.request, args=("GET", "/x")) for endpoint in endpoints
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for endpoint in endpoints:  # and again, each on its kept-alive connection
            assert endpoint.request("GET", "/y").status == 200
    finally:
        for server in servers:
            server.close()
    # the CA directory alone: the authority looked up when a chain needed it, no bundle read
    assert [kind for kind, _ in made] == ["directory"]
    assert [len(server.requests) for server in servers] == [2, 2, 2]
    assert [server.connections for server in servers] == [1, 1, 1]


def test_a_ca_only_the_bundle_file_holds_is_trusted_after_one_more_handshake(monkeypatch, tmp_path):
    # The CA directory and the bundle file are two copies of the system's set; where the
    # directory lacks a CA the bundle has, the whole set decides, as create_default_context's
    # does, and the process keeps the whole set from then on.
    authority = Authority("hookpress test CA")
    monkeypatch.setenv("SSL_CERT_DIR", trust_directory(None, tmp_path / "cas"))  # the system's
    monkeypatch.setenv("SSL_CERT_FILE", authority.pem(tmp_path / "ca.pem"))
    made = fresh_system_tls(monkeypatch)
    first, second = _tls_server(authority, tmp_path), _tls_server(authority, tmp_path)
    try:
        endpoint = Endpoint("gcs", first.url("127.0.0.1", "https"), 5)
        assert endpoint.request("GET", "/x").status == 200
        assert endpoint.request("GET", "/y").status == 200  # kept alive
        later = Endpoint("pubsub", second.url("127.0.0.1", "https"), 5)
        assert later.request("GET", "/x").status == 200
    finally:
        first.close()
        second.close()
    assert [kind for kind, _ in made] == ["directory", "whole"]
    # the refused handshake never became a connection; the endpoint made after it went
    # straight to the whole set
    assert (first.connections, len(first.requests)) == (1, 2)
    assert (second.connections, len(second.requests)) == (1, 1)


def test_without_a_ca_directory_the_bundle_is_read_once(monkeypatch, tmp_path):
    authority = Authority("hookpress test CA")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no such directory"))
    monkeypatch.setenv("SSL_CERT_FILE", authority.pem(tmp_path / "ca.pem"))
    made = fresh_system_tls(monkeypatch)
    server = _tls_server(authority, tmp_path)
    stranger = _tls_server(Authority("someone else's CA"), tmp_path)
    try:
        assert (
            Endpoint("gcs", server.url("127.0.0.1", "https"), 5).request("GET", "/x").status == 200
        )
        with pytest.raises(BackendError):
            Endpoint("gcs", stranger.url("127.0.0.1", "https"), 5).request("GET", "/x")
    finally:
        server.close()
        stranger.close()
    assert [kind for kind, _ in made] == ["whole"]
    assert not stranger.requests


@pytest.mark.parametrize("trusted_by", ["directory", "bundle"])
def test_the_system_set_still_refuses_another_ca_and_another_name(
    trusted_by, monkeypatch, tmp_path
):
    # Refused by the CA directory, then by the whole set: one handshake more, same answer.
    authority = Authority("hookpress test CA")
    if trusted_by == "directory":
        cas = trust_directory(authority, tmp_path / "cas", system=False)
        bundle = Authority("not trusted here").pem(tmp_path / "other.pem")
    else:
        cas = trust_directory(None, tmp_path / "cas")
        bundle = authority.pem(tmp_path / "ca.pem")
    monkeypatch.setenv("SSL_CERT_DIR", cas)
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    made = fresh_system_tls(monkeypatch)
    stranger = _tls_server(Authority("someone else's CA"), tmp_path)
    elsewhere = _tls_server(authority, tmp_path, [x509.DNSName("storage.example")])
    try:
        for server in (stranger, elsewhere):
            with pytest.raises(BackendError) as err:
                Endpoint("gcs", server.url("127.0.0.1", "https"), 5).request("GET", "/x")
            assert err.value.backend == "gcs"
            assert "SSLCertVerificationError" in str(err.value)
            assert not server.requests  # refused in the handshake: nothing was sent
            assert server.connections == 0
    finally:
        stranger.close()
        elsewhere.close()
    assert [kind for kind, _ in made] == ["directory", "whole"]


def test_a_callers_own_context_is_never_widened(system_tls, tmp_path):
    # deliver's WordPress client names its own trust: a refusal there is final, and the
    # system's contexts are not even made
    authority, made = system_tls
    stranger = _tls_server(Authority("someone else's CA"), tmp_path)
    cafile = authority.pem(tmp_path / "ca.pem")
    try:
        endpoint = Endpoint(
            "gcs",
            stranger.url("127.0.0.1", "https"),
            5,
            tls=lambda: ssl.create_default_context(cafile=cafile),
        )
        with pytest.raises(BackendError):
            endpoint.request("GET", "/x")
    finally:
        stranger.close()
    assert made == []
    assert not stranger.requests


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def _until_readable(sock: socket.socket, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([sock], [], [], 0.01)[0]:
            return True
    return False


def test_warm_opens_a_connection_in_its_own_thread_that_the_first_request_uses(tmp_path):
    authority = Authority("hookpress test CA")
    server = _tls_server(authority, tmp_path)
    cafile = authority.pem(tmp_path / "ca.pem")
    made: list[str] = []

    def context() -> ssl.SSLContext:
        made.append(threading.current_thread().name)
        return ssl.create_default_context(cafile=cafile)

    try:
        endpoint = Endpoint("gcs", server.url("127.0.0.1", "https"), 5, tls=context)
        threads = endpoint.warm()
        assert len(threads) == 1  # no authorization to ask for: one connection
        _join(threads)
        (warmed,) = endpoint._idle
        # TLS 1.3: the server's session tickets arrive after the handshake, so the idle,
        # never-read connection is readable with no answer pending; it is not stale for that
        assert warmed._sock.version() == "TLSv1.3"
        assert _until_readable(warmed._sock)
        assert endpoint.request("GET", "/x").status == 200
        assert endpoint.request("GET", "/y").status == 200
    finally:
        server.close()
    assert made == ["warm-gcs"]  # the context made once, in the warming thread
    assert server.connections == 1  # both requests on the warmed connection


def test_a_request_made_while_warm_connects_waits_for_that_connection(tmp_path):
    authority = Authority("hookpress test CA")
    server = _tls_server(authority, tmp_path)
    cafile = authority.pem(tmp_path / "ca.pem")
    release = threading.Event()
    made: list[str] = []

    def slow_context() -> ssl.SSLContext:
        made.append(threading.current_thread().name)
        assert release.wait(10)
        return ssl.create_default_context(cafile=cafile)

    answers: list[int] = []
    try:
        endpoint = Endpoint("gcs", server.url("127.0.0.1", "https"), 5, tls=slow_context)
        threads = endpoint.warm()
        request = threading.Thread(
            target=lambda: answers.append(endpoint.request("GET", "/x").status)
        )
        request.start()
        time.sleep(0.2)
        assert request.is_alive()  # waiting for the warming connection, not making its own
        assert server.connections == 0
        release.set()
        request.join(10)
        _join(threads)
    finally:
        release.set()
        server.close()
    assert answers == [200]
    assert made == ["warm-gcs"]
    assert server.connections == 1


def test_a_failed_warm_is_met_again_by_the_request_and_escapes_no_thread():
    failed: list[Any] = []
    threading.excepthook, old_hook = failed.append, threading.excepthook
    try:
        with socket.socket() as unused:  # a port nobody listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        endpoint = Endpoint("gcs", f"https://127.0.0.1:{port}", 1)
        started = time.monotonic()
        _join(endpoint.warm(connections=2))
        with pytest.raises(BackendError):  # the request meets the refusal itself, at once
            endpoint.request("GET", "/x")
        assert time.monotonic() - started < 5
    finally:
        threading.excepthook = old_hook
    assert failed == []
    assert endpoint._idle == []


def test_a_warm_thread_that_cannot_start_leaves_no_request_waiting(monkeypatch):
    server = ScriptedServer(lambda _seen, status: json_reply(status, {}))
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name.startswith("warm-"):
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    try:
        endpoint = Endpoint("gcs", server.url("127.0.0.1", "http"), 5)
        assert endpoint.warm(connections=2) == []
        done: list[int] = []
        request = threading.Thread(target=lambda: done.append(endpoint.request("GET", "/x").status))
        start(request)
        request.join(5)
    finally:
        server.close()
    assert done == [200]  # connected for itself, not waiting on a warming that never began


def test_warm_asks_for_the_authorization_in_its_own_thread(tmp_path):
    asked: list[str] = []

    def authorization() -> str:
        asked.append(threading.current_thread().name)
        return "Bearer token"

    server = ScriptedServer(lambda _seen, status: json_reply(status, {}))
    try:
        endpoint = Endpoint("pubsub", server.url("127.0.0.1", "http"), 5, authorization)
        threads = endpoint.warm()
        assert len(threads) == 2  # a connection, and the authorization
        _join(threads)
        assert asked == ["warm-pubsub"]
        assert endpoint.request("GET", "/x").status == 200
    finally:
        server.close()
    assert server.connections == 1
    assert server.requests[0].headers["Authorization"] == "Bearer token"


def test_an_idle_tls_connection_the_server_closed_is_stale(tmp_path):
    # Reading an idle TLS connection's session tickets must not hide a close that follows.
    authority = Authority("hookpress test CA")
    server_context = authority.server_context(tmp_path, LOOPBACK)
    cafile = authority.pem(tmp_path / "ca.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []
    close = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        tls = server_context.wrap_socket(conn, server_side=True)
        accepted.append(tls)
        close.wait(10)
        tls.close()

    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    try:
        port = listener.getsockname()[1]
        endpoint = Endpoint(
            "gcs",
            f"https://127.0.0.1:{port}",
            5,
            tls=lambda: ssl.create_default_context(cafile=cafile),
        )
        _join(endpoint.warm())
        (warmed,) = endpoint._idle
        assert _until_readable(warmed._sock)  # the tickets
        assert not warmed.stale()
        close.set()
        serving.join(10)
        assert _until_readable(warmed._sock)  # the close
        assert warmed.stale()
    finally:
        close.set()
        listener.close()
