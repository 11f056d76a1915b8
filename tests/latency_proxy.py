"""A TCP proxy on 127.0.0.1 that adds a fixed one-way delay to what a client sends.

The emulators answer from the same machine in a fraction of a millisecond, so
on them a request that waits for one round trip and a request that waits for
two take about the same time. In the cloud each call to Firestore or Cloud
Storage is a network round trip. Put this in front of an emulator and every
request arrives ``delay_s`` after it was sent, with its bytes in order. Then
the number of round trips a caller waits for shows in its wall time.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import sys
import threading
import time
from typing import Self

__all__ = ["LatencyProxy"]


class LatencyProxy:
    """Forwards each connection to ``upstream`` (``host:port``): client bytes late, answers not."""

    def __init__(self, upstream: str, delay_s: float) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host or "127.0.0.1", int(port))
        self.delay_s = delay_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, for an ``*_EMULATOR_HOST`` variable."""
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._closed = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in [self._listener, *sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            due: list[tuple[float, int, bytes]] = []
            ready = threading.Condition()
            threading.Thread(target=self._read, args=(client, due, ready), daemon=True).start()
            threading.Thread(target=self._send, args=(upstream, due, ready), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _read(
        self, client: socket.socket, due: list[tuple[float, int, bytes]], ready: threading.Condition
    ) -> None:
        """Each chunk the client sends, stamped with when it may go on."""
        n = 0
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            with ready:
                heapq.heappush(due, (time.monotonic() + self.delay_s, n, chunk))
                ready.notify()
            if not chunk:
                return
            n += 1

    def _send(
        self,
        upstream: socket.socket,
        due: list[tuple[float, int, bytes]],
        ready: threading.Condition,
    ) -> None:
        while True:
            with ready:
                while not due:
                    ready.wait()
                at, _, chunk = due[0]
                wait = at - time.monotonic()
                if wait > 0:
                    ready.wait(wait)
                    continue
                heapq.heappop(due)
            try:
                if not chunk:
                    upstream.shutdown(socket.SHUT_WR)
                    return
                upstream.sendall(chunk)
            except OSError:
                return

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        """The answers, as they come."""
        while True:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(chunk)
            except OSError:
                return


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.latency_proxy DELAY_S UPSTREAM...``: a proxy before each upstream
    (``host:port``) in a process of its own, so that its threads share no interpreter lock
    with a caller being timed. Prints each proxy's address on a line, in order, and
    serves until its standard input closes."""
    args = sys.argv[1:] if argv is None else argv
    delay_s, upstreams = float(args[0]), args[1:]
    proxies = [LatencyProxy(upstream, delay_s).start() for upstream in upstreams]
    for proxy in proxies:
        print(proxy.address, flush=True)
    sys.stdin.read()
    for proxy in proxies:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
