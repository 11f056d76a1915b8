"""A small fault-injecting HTTP proxy between the deliver function and WordPress.

It forwards every request to one upstream and, when told to, answers instead
with a 503 or a 429 (with ``Retry-After``), or hangs past the caller's read
timeout and drops the connection. Tests drive it in-process through
:class:`Faults`; out-of-process tools (the chaos run, a developer poking at
``nox -s dev``) use ``POST /__faults`` with the same fields as JSON.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["BackgroundServer", "FaultProxy", "Faults", "QuietHTTPServer", "QuietHandler"]

_JSON = (("Content-Type", "application/json"),)

CONTROL_PATH = "/__faults"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass
class Faults:
    """What to inject: the ``script`` first, then counted faults (``fail_next``), then rates."""

    script: list[int | str] = field(
        default_factory=list
    )  # next requests, in order: a status or "hang"
    fail_next: int = 0  # the next N requests get ``fail_status``
    fail_status: int = 503
    hang_next: int = 0  # the next N requests hang for ``hang_s`` then drop
    always_status: int | None = None  # every request gets this status
    rate: float = 0.0  # share of requests failed at random
    rate_statuses: list[int] = field(default_factory=lambda: [503, 429])
    rate_hang_share: float = 0.0  # share of the random failures that hang instead
    hang_s: float = 10.0
    seed: int | None = None
    # counters (read-only for callers)
    forwarded: int = 0
    injected: dict[str, int] = field(default_factory=dict)

    def update(self, **changes: Any) -> None:
        """Set fields by name (unknown names are refused)."""
        for name, value in changes.items():
            if name in {"forwarded", "injected"} or not hasattr(self, name):
                raise ValueError(f"unknown fault setting {name!r}")
            setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        """The settings and counters as JSON-ready data."""
        return asdict(self)


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive handler of the local proxies: no access log, one way to answer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the functions log what matters

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Handler(QuietHandler):
    server: _Server

    def _control(self) -> None:
        proxy = self.server.proxy
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                proxy.set(**json.loads(self.rfile.read(length) or b"{}"))
            except (ValueError, TypeError) as exc:
                self._send(400, str(exc).encode())
                return
        self._send(200, json.dumps(proxy.snapshot()).encode(), _JSON)

    def _decide(self) -> str | int | None:
        """None to forward, an int status to answer, or "hang"."""
        proxy = self.server.proxy
        with proxy.lock:
            faults = proxy.faults
            if faults.script:
                step = faults.script.pop(0)
                return "hang" if step == "hang" else int(step)
            if faults.hang_next > 0:
                faults.hang_next -= 1
                return "hang"
            if faults.fail_next > 0:
                faults.fail_next -= 1
                return faults.fail_status
            if faults.always_status is not None:
                return faults.always_status
            if faults.rate > 0 and proxy.random.random() < faults.rate:
                if proxy.random.random() < faults.rate_hang_share:
                    return "hang"
                return int(proxy.random.choice(faults.rate_statuses))
            faults.forwarded += 1
            return None

    def _handle(self) -> None:
        if self.path.startswith(CONTROL_PATH):
            self._control()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        decision = self._decide()
        proxy = self.server.proxy
        if decision is not None:
            with proxy.lock:
                label = str(decision)
                proxy.faults.injected[label] = proxy.faults.injected.get(label, 0) + 1
        if decision == "hang":
            time.sleep(proxy.faults.hang_s)
            self.close_connection = True
            return
        if isinstance(decision, int):
            headers = {"Content-Type": "application/json"}
            if decision == 429:
                headers["Retry-After"] = "1"
            self._send(decision, b'{"code":"injected_fault"}', headers.items())
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        up = self.server.proxy.upstream
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = up.netloc
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            self._send(502, b'{"code":"upstream_unreachable"}', _JSON)
            return
        finally:
            conn.close()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
        self._send(resp.status, data, out.items())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading server for local stand-ins: callers going away is not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that went away (a killed deliver process, a timed-out read) is an
        # expected part of fault injection, not a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server(QuietHTTPServer):
    proxy: FaultProxy


class BackgroundServer:
    """A local stand-in serving ``_server`` from a background thread on 127.0.0.1."""

    _server: QuietHTTPServer
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's origin, e.g. http://127.0.0.1:PORT."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()


class FaultProxy(BackgroundServer):
    """Listens on 127.0.0.1 and forwards to ``upstream`` (an http:// origin)."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = urlsplit(upstream)
        self.faults = Faults()
        self.lock = threading.Lock()
        self.random = random.Random()  # noqa: S311 - fault injection, not security
        server = _Server(("127.0.0.1", port), _Handler)
        server.proxy = self
        self._server = server

    def set(self, **changes: Any) -> None:
        """Change the fault settings (see :class:`Faults`)."""
        with self.lock:
            self.faults.update(**changes)
            if "seed" in changes:
                self.random.seed(changes["seed"])

    def clear(self) -> None:
        """No faults; counters reset."""
        with self.lock:
            self.faults = Faults(hang_s=self.faults.hang_s)

    def snapshot(self) -> dict[str, Any]:
        """Settings and counters."""
        with self.lock:
            return self.faults.snapshot()
