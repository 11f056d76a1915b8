"""A real HTTP/1.1 server on 127.0.0.1 whose answers a test scripts, plain or over TLS.

The far end of the deliver function's WordPress client in tests: what goes
over the socket is what the client really sends (its headers, its one write,
its Basic credentials), and what comes back is parsed by the client's own
reader. Each request is answered by the next step of ``script``, or by
``default`` when the script is empty:

- an ``int``: that status, handled by ``default`` (so a fake decides the body);
  an empty script is ``default_status``;
- a callable ``(Seen) -> Reply``: its answer;
- :data:`DROP`: the connection is closed without an answer;
- :class:`Hang`: nothing is answered for that many seconds, then the connection closes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DROP", "Hang", "Reply", "ScriptedServer", "Seen", "json_reply"]


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: Message  # case-insensitive .get()
    content: bytes
    host: str  # the Host header

    def json(self) -> Any:
        return json.loads(self.content)


#: (status, headers, body)
Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, data: Any, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


@dataclass(frozen=True)
class Hang:
    seconds: float


DROP = "drop"
Step = int | Callable[[Seen], Reply] | Hang | str


class ScriptedServer:
    """Serves until :meth:`close`; ``requests`` holds every request seen, in order."""

    def __init__(
        self,
        default: Callable[[Seen, int], Reply],
        tls: ssl.SSLContext | None = None,
        default_status: int = 200,
    ) -> None:
        self.script: list[Step] = []
        self.default_status = default_status
        self.requests: list[Seen] = []
        self.connections = 0
        self.default = default
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # the head and the body go in two writes: without this, Nagle's algorithm
            # holds the second until the client's delayed ACK (40 ms a request)
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(self.command, self.path, self.headers, body, self.headers["Host"])
                server.requests.append(seen)
                step: Step = server.script.pop(0) if server.script else server.default_status
                if step == DROP:
                    self.close_connection = True
                    return
                if isinstance(step, Hang):
                    time.sleep(step.seconds)
                    self.close_connection = True
                    return
                status, headers, payload = (
                    server.default(seen, step) if isinstance(step, int) else step(seen)  # type: ignore[operator]
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
