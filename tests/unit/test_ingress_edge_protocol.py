"""The ingress's server refuses a request head over 64 KiB (hookpress/ingress/_server.py).

Through the real thing: functions-framework serving functions/ingress/main.py on
127.0.0.1, on uvicorn with httptools as deployed, from raw sockets. The ingress
has no settings here, so every request that reaches it is its 503: the point is
whether the server let the request through to it at all.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpress.ingress._server import MAX_HEAD_BYTES
from hookpress.local.framework import FunctionProcess


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    log = tmp_path_factory.mktemp("head") / "ingress.log"
    process = FunctionProcess("ingress", "ingress", {"THREADS": "2"}, log, inherit_env=False)
    process.start()
    try:
        yield process.port
    finally:
        process.stop()


def exchange(port: int, request: bytes) -> tuple[bytes, bool]:
    """What the server answered (its head and body, up to 64 KiB) and whether it then
    closed the connection (or reset it, having closed it with our bytes unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # closed while we were still sending: what a refusal mid-head looks like
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + 30:
                chunk = sock.recv(65536)
                if not chunk:
                    return answer, True
                answer += chunk
            sock.settimeout(2)
            return answer, sock.recv(1) == b""
        except ConnectionResetError:
            return answer, True
        except TimeoutError:
            return answer, False


def head(extra: bytes) -> bytes:
    return b"POST /stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"Content-Length: 2\r\n\r\n{}"


def test_an_ordinary_head_reaches_the_ingress(port: int) -> None:
    answer, _ = exchange(port, head(b"X-Pad: " + b"a" * 8_000 + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:60]  # the ingress's own (no settings)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"X-Pad: " + b"a" * (1024 * 1024) + b"\r\n", id="one 1 MiB header"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % i for i in range(20_000)), id="20,000 headers"),
    ],
)
def test_a_head_over_the_bound_is_431_and_the_connection_closed(port: int, extra: bytes) -> None:
    assert len(extra) > MAX_HEAD_BYTES
    answer, closed = exchange(port, head(extra))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:60]
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body) == {"status": "rejected", "error": "headers too large"}
    assert closed


@pytest.mark.parametrize(("size", "status"), [(2 * 1024 * 1024, b"431"), (65_600, b"400")])
def test_a_url_over_the_bound_is_refused(port: int, size: int, status: bytes) -> None:
    """A URL still arriving past the bound is the 431. A head of 65,600 bytes is whole by
    the read that takes the count past 64 KiB, and httptools's own URL parser refuses its
    URL with a 400 (it holds offsets in 16 bits): refused and closed either way."""
    request = b"POST /stripe?" + b"q" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    answer, closed = exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:60]
    assert closed


def test_a_body_arriving_with_the_head_does_not_count_against_it(port: int) -> None:
    """A head of a few hundred bytes followed at once, in the same writes, by 256 KiB of
    body: only the head is bounded."""
    body = b'{"pad": "' + b"x" * (256 * 1024) + b'"}'
    request = (
        b"POST /stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer, _ = exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:60]


def test_a_second_request_on_the_connection_is_bounded_afresh(port: int) -> None:
    """Two heads of 40 KiB each on one kept-alive connection: each is under the bound.
    (functions-framework answers GET /robots.txt 404 itself, keeping the connection.)"""
    pad = b"X-Pad: " + b"a" * (40 * 1024) + b"\r\n"
    one = b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(one)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 404 "), answer[:60]
            length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            rest = answer.split(b"\r\n\r\n", 1)[1]
            while len(rest) < length:
                rest += sock.recv(65536)


def test_the_bound_is_set_where_functions_framework_reads_it() -> None:
    """main.py sets it on import, before functions-framework builds its worker."""
    import importlib.util

    import uvicorn_worker

    source = Path(__file__).resolve().parents[2] / "functions" / "ingress" / "main.py"
    spec = importlib.util.spec_from_file_location("ingress_main_for_test", source)
    assert spec is not None
    assert spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    http = uvicorn_worker.UvicornWorker.CONFIG_KWARGS["http"]
    assert isinstance(http, type)
    assert http.__name__ == "EdgeProtocol"


def the_rest(sock: socket.socket) -> bytes:
    """What is still to be read on ``sock``, up to its end or reset (within 10 s)."""
    sock.setblocking(True)
    sock.settimeout(10)
    data = b""
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def upload_to_a_refusal(
    port: int, head: bytes, limit: int = 64 * 1024 * 1024
) -> tuple[bytes, int, bool]:
    """Send ``head``, then a chunked body of up to ``limit`` bytes while reading the answer:
    the answer, how many body bytes had gone out, and whether the server closed (within
    30 s)."""
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    answer = b""
    deadline = time.monotonic() + 30
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        sock.sendall(head)
        sock.setblocking(False)
        while time.monotonic() < deadline:
            if sent < limit:
                with contextlib.suppress(BlockingIOError):
                    offset = sent % len(chunk)
                    try:
                        sent += sock.send(chunk[offset:])
                    except (BrokenPipeError, ConnectionResetError):
                        # The server closed with our bytes unread, so it reset the connection;
                        # what it sent before is still ours to read (see answer_read_late).
                        return answer + the_rest(sock), sent, True
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                if sent >= limit:
                    time.sleep(0.001)
                continue
            except ConnectionResetError:
                return answer, sent, True
            if not data:
                return answer, sent, True
            answer += data
    return answer, sent, False


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        pytest.param(b"TRACE /stripe HTTP/1.1", b"405", id="a method functions-framework omits"),
        pytest.param(b"GET /robots.txt HTTP/1.1", b"404", id="functions-framework's own 404"),
    ],
)
def test_a_framework_answer_before_the_body_closes_the_connection(
    port: int, request_line: bytes, status: bytes
) -> None:
    """functions-framework's routes answer these before the function runs, and say nothing
    of the connection; the server closes it rather than read a 64 MiB upload to its end."""
    head = request_line + b"\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, sent, closed = upload_to_a_refusal(port, head)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:60]
    assert closed
    # closed long before the upload's end: what was in flight (socket buffers, one read)
    assert sent < 16 * 1024 * 1024, sent


def answer_read_late(port: int, head: bytes, pause_s: float = 0.5) -> bytes:
    """Send ``head`` and then body bytes until the server takes no more, read nothing for
    ``pause_s``, then read: the whole answer.

    A client busy sending, or slower than the server (a loaded machine, a proxy in
    between), reads its answer after the server has finished with the connection. The
    server closes such a connection with the client's bytes unread, and Linux then resets
    it (tcp_close sends RST when data was unread). A reset does not take back what the
    client's kernel has already received: the answer stays readable before the reset is
    reported. This is what the refusals here rely on instead of reading the rest of an
    upload (hookpress/ingress/_server.py), and what an unloaded test never waits for.
    """
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
            sock.setblocking(False)
            stalled = None
            while stalled is None or time.monotonic() - stalled < 0.2:
                try:
                    sock.send(chunk)
                    stalled = None
                except BlockingIOError:
                    stalled = stalled or time.monotonic()
                    time.sleep(0.01)
        time.sleep(pause_s)
        return the_rest(sock)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        pytest.param(
            b"TRACE /stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"405",
            id="functions-framework's 405",
        ),
        pytest.param(
            b"POST /stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"503",
            id="the ingress's own refusal",
        ),
        pytest.param(
            b"POST /stripe HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (1024 * 1024),
            b"431",
            id="a head over the bound",
        ),
    ],
)
def test_a_refusal_read_after_the_server_closed_still_arrives_whole(
    port: int, head: bytes, status: bytes
) -> None:
    """The answer to a request whose bytes are still arriving reaches a client that reads
    it only after the server has closed the connection (see :func:`answer_read_late`)."""
    answer = answer_read_late(port, head)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:60]
    text, _, body = answer.partition(b"\r\n\r\n")
    length = int(text.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(body) == length, answer
