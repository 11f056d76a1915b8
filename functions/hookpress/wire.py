"""Our one HTTP/1.1 client: pooled keep-alive connections to one fixed host.

Every per-event call goes out through it: the Google JSON APIs
(:mod:`hookpress.backends._rest` names their hosts and retries) and the
deliver function's POST to WordPress (:mod:`hookpress.deliver._wordpress`).

Why not ``http.client``: profiled under load (bench/results/profile/), it
parsed every response's headers with the ``email`` package, made a file
object per response, and sent a request of more than 2,000 bytes in two
writes, which with Nagle's algorithm and delayed ACKs stalled a batched
Firestore write for 40 ms. Why not httpx (what deliver used before): its
stack (httpcore, h11, anyio, idna, certifi) took 30–40 ms of deliver's cold
start to import and 20–40 ms more to build a client, and its layers cost CPU
on every post (bench/RESULTS.md). :class:`_Wire` below writes each request
in one ``sendall`` with ``TCP_NODELAY`` and reads answers with a small
HTTP/1.1 reader (status line, headers, ``Content-Length`` or chunked body).

Rules of this transport:

- **One host per endpoint, fixed when it is built**: a request names a path
  on it, never another host. Redirects are answers like any other; nothing
  here follows one.
- **Keep-alive pool per host**, thread-safe. A pooled connection the server
  has closed (readable while idle) or that sat idle too long is dropped
  before use rather than discovered by a failed request.
- **Retries only where nothing can have been applied**: the request could
  not be sent whole on a pooled connection (then once, on a new one), or the
  server answered a status in ``retry_statuses`` (refused, not done; none
  unless the caller names them). Never after a request went out and its
  answer was lost: the caller decides. Backoff doubles from 50 ms, within
  the endpoint's read timeout.
- **Timeouts**: ``connect_timeout_s`` for the TCP connect and the TLS
  handshake, ``timeout_s`` for each send and receive after it.
- **Warming**: :meth:`Endpoint.warm` opens connections (and asks for the
  ``Authorization`` value) ahead of an instance's first request, in threads
  of their own; nothing is sent on a warmed connection until a request is.
- **Split phase**: :meth:`Endpoint.send` writes a request and returns at once;
  :meth:`Pending.result` reads the answer. Two calls to two hosts overlap in
  one thread, with no thread pool in between.
- **TLS** through :mod:`ssl`, certificates and host name verified, with the
  context ``tls`` builds: unless the caller says otherwise, :func:`system_tls`,
  the system's CA set, shared by every endpoint of the process (its CA directory
  read lazily, its bundle file only if the directory refuses a certificate).

Every failure goes through :meth:`Endpoint.failure`, which by default raises
:class:`TransportError` (what failed: ``connect``, ``write`` or ``read``, and
whether it timed out); a caller's subclass turns it into its own error.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from hookpress.instance import Lazy, background

__all__ = [
    "Answer",
    "Endpoint",
    "Pending",
    "Phase",
    "TransportError",
    "WireError",
    "system_tls",
]

_MAX_IDLE_S = 30.0  # drop connections idle longer than this instead of racing a server close
_POOL_SIZE = 64
_FIRST_BACKOFF_S = 0.05
_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024
_RECV = 64 * 1024

#: what failed: opening the connection (TCP or TLS), sending the request, reading the answer
Phase = Literal["connect", "write", "read"]

# The system's CA set, read as cheaply as OpenSSL allows and never trusting less.
#
# Making a context that loads the CA bundle file parses every certificate in it: 20 ms of
# CPU with OpenSSL 3.0 and Debian's 144 CAs (bench/RESULTS.md, "One TLS context"), several
# times OpenSSL 1.1's time (python/cpython#95031, openssl/openssl#16878); python312 on
# Cloud Run runs on the google-22 stack, Ubuntu 22.04 with OpenSSL 3.0
# (https://cloud.google.com/run/docs/runtimes/python). ``ssl.create_default_context()``
# trusts that file *and* OpenSSL's hashed CA directory, which it reads lazily: a chain's
# issuer is looked up by its subject's hash when a handshake needs it (SSL_CTX_load_verify_
# locations(3), "CApath"; https://docs.openssl.org/3.0/man3/SSL_CTX_load_verify_locations/).
# On Debian and Ubuntu both are written from the same certificates by
# update-ca-certificates(8). So the process first trusts the directory alone (well under a
# millisecond to make), and a certificate that context refuses is checked once more, on a
# new connection, against the whole set, which the process then uses for every connection
# after: whatever the directory lacks, what is accepted is what create_default_context()
# accepts, at the price of one extra handshake. The contexts are made on the first https
# connection and shared by every endpoint that does not name its own trust; one SSLContext
# wraps the sockets of any number of connections, in any thread.


class _SystemTrust:
    """The process's contexts on the system's CA set: the directory alone, then if ever
    needed the whole set (``make`` is ``ssl.create_default_context``; tests count it)."""

    def __init__(self, make: Callable[..., ssl.SSLContext] = ssl.create_default_context) -> None:
        self._make = make
        self._directory = Lazy(self._make_directory)
        self._whole = Lazy(make)

    def _make_directory(self) -> ssl.SSLContext:
        # SSL_CERT_DIR, else OpenSSL's own; None when that is not a directory (typeshed
        # says str, but ssl.get_default_verify_paths() gives None then)
        capath: str | None = ssl.get_default_verify_paths().capath
        if capath is None:
            return self._whole()  # nothing to look up lazily: the whole set from the start
        return self._make(capath=capath)

    def context(self) -> ssl.SSLContext:
        # the whole set once it is made: widened, or there was no directory to read
        return self._whole.peek() or self._directory()

    def widen(self, refused: ssl.SSLContext) -> ssl.SSLContext | None:
        """The context to check a certificate ``refused`` refused against once more: the
        whole set, from now on the process's, if ``refused`` was the directory alone;
        otherwise None (it was already the whole set, or not the system's)."""
        if refused is not self._directory.peek() or refused is self._whole.peek():
            return None
        return self._whole()


_SYSTEM = _SystemTrust()


def system_tls() -> ssl.SSLContext:
    """The process's context on the system's CA set (``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    as OpenSSL reads them when it is made): every endpoint's default. The CA directory
    alone until it refuses a certificate, the whole set after (see above)."""
    return _SYSTEM.context()


class Answer(msgspec.Struct, frozen=True):
    """A response: status, body, and its headers (lower-case names)."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: the body stopped at the endpoint's ``body_limit``: the rest was not read
    truncated: bool = False

    def json(self) -> Any:
        """The body as JSON (an empty body is ``{}``)."""
        return json.loads(self.body) if self.body else {}


class WireError(Exception):
    """The peer spoke something other than HTTP/1.1, or closed the connection mid-answer."""


class TransportError(Exception):
    """A request failed on the wire: ``phase`` says where, ``cause`` what, ``timeout`` if slow."""

    def __init__(self, service: str, phase: Phase, cause: BaseException) -> None:
        super().__init__(f"{service}: {phase} failed: {type(cause).__name__}")
        self.service = service
        self.phase = phase
        self.cause = cause
        self.timeout = isinstance(cause, TimeoutError)  # socket.timeout is TimeoutError


class _Wire:
    """One HTTP/1.1 connection: whole requests out, whole answers in. Not thread-safe."""

    __slots__ = ("_buf", "_sock", "idle_since", "reused")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.idle_since = 0.0
        self.reused = False

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing a broken socket
            self._sock.close()

    def stale(self) -> bool:
        """Whether the peer closed (or wrote to) this idle connection."""
        if self._buf:
            return True  # bytes nobody asked for
        sock = self._sock
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return True
            readable, _, _ = select.select([sock], [], [], 0)
            if readable and isinstance(sock, ssl.SSLSocket):
                return self._tls_readable(sock)
        except (OSError, ValueError):
            return True
        return bool(readable)

    @staticmethod
    def _tls_readable(sock: ssl.SSLSocket) -> bool:
        """Whether what made an idle TLS connection readable is data or a close.

        A TLS 1.3 server sends its session tickets after the handshake (RFC 8446, 4.6.1):
        records with no application data, which OpenSSL reads with the next answer. A
        connection opened ahead of its first request (:meth:`Endpoint.warm`) is readable
        with them alone; reading without waiting takes them in and finds nothing more.
        """
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            sock.recv(1)  # data nobody asked for (stale) or b"" (closed): either way, stale
        except ssl.SSLWantReadError:
            return False  # protocol records only: the connection is as good as new
        finally:
            sock.settimeout(timeout)
        return True

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def _fill(self) -> None:
        chunk = self._sock.recv(_RECV)
        if not chunk:
            raise WireError("connection closed by the peer")
        self._buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > _MAX_HEAD:
                raise WireError("line too long")
            self._fill()

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read(
        self, method: str, limit: int | None = None
    ) -> tuple[int, dict[str, str], bytes, bool, bool]:
        """Status, headers (lower-case names), body, whether to keep the connection, and
        whether the body was cut at ``limit`` bytes (then the connection is not kept)."""
        while True:
            while True:
                end = self._buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if len(self._buf) > _MAX_HEAD:
                    raise WireError("response head too long")
                self._fill()
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            lines = head.split("\r\n")
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise WireError("not an HTTP/1.x response")
            try:
                status = int(rest[:3])
            except ValueError:
                raise WireError("bad status line") from None
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise WireError("bad header line")
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            break
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if method == "HEAD" or status in {204, 304}:
            return status, headers, b"", keep, False
        cap = _MAX_BODY if limit is None else limit
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, cut = self._chunked(cap, limit is not None)
            return status, headers, body, keep and not cut, cut
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise WireError("bad Content-Length") from None
            if n < 0 or (limit is None and n > _MAX_BODY):
                raise WireError("bad Content-Length" if n < 0 else "body too large")
            if n > cap:
                return status, headers, self._exactly(cap), False, True
            return status, headers, self._exactly(n), keep, False
        body, cut = self._until_closed(cap, limit is not None)
        return status, headers, body, False, cut

    def _chunked(self, cap: int, cut_ok: bool) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise WireError("bad chunk size") from None
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts), False
            if total + size > cap:
                if not cut_ok:
                    raise WireError("body too large")
                parts.append(self._exactly(cap - total))
                return b"".join(parts), True
            total += size
            parts.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise WireError("bad chunk end")

    def _until_closed(self, cap: int, cut_ok: bool) -> tuple[bytes, bool]:
        while True:
            if len(self._buf) > cap:
                if not cut_ok:
                    raise WireError("body too large")
                data = bytes(self._buf[:cap])
                self._buf.clear()
                return data, True
            chunk = self._sock.recv(_RECV)
            if not chunk:
                data = bytes(self._buf)
                self._buf.clear()
                return data, False
            self._buf += chunk


_FAILURES = (OSError, WireError)  # socket.timeout and ssl.SSLError are OSErrors


class Endpoint:
    """Requests to one host over a pool of kept-alive connections; thread-safe.

    ``authorization`` is the ``Authorization`` header value (None: no header) or
    returns it; a callable is asked for every request, so a refreshed token is used
    at once. ``tls`` gives the TLS context when the first ``https`` connection opens
    (by default the process's one, :func:`system_tls`).
    ``body_limit`` cuts every answer's body at that many bytes (the rest is not
    read, the connection not reused); without it an answer over 32 MiB fails.
    """

    #: statuses that mean "refused, not done": retried with backoff within the timeout
    retry_statuses: frozenset[int] = frozenset()

    def __init__(
        self,
        service: str,
        base_url: str,
        timeout_s: float,
        authorization: Callable[[], str | None] | str | None = None,
        user_agent: str = "hookpress",
        *,
        connect_timeout_s: float | None = None,
        tls: Callable[[], ssl.SSLContext] = system_tls,
        pool_size: int = _POOL_SIZE,
        body_limit: int | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.service = service
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        # An ASCII host name given as bytes: socket.getaddrinfo and ssl encode a str with the
        # "idna" codec, whose import (stringprep, unicodedata) cost the first request ~9 ms
        # (bench/results/profile/deliver-after/); bytes skip it and mean the same name.
        self._name: str | bytes = self._host.encode("ascii") if self._host.isascii() else self._host
        self._port = parts.port or (443 if self._https else 80)
        default_port = parts.port is None or parts.port == (443 if self._https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 literal
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout_s
        self._connect_timeout = timeout_s if connect_timeout_s is None else connect_timeout_s
        # a callable is asked on every request (a token it may refresh); a value is fixed
        self._asks = callable(authorization)
        self._authorization: Callable[[], str | None] = (
            authorization if callable(authorization) else lambda: authorization
        )
        self._user_agent = user_agent
        # the system's context is asked for on every new connection (it changes once if the
        # CA directory refuses a certificate: _SystemTrust); a caller's own is made once
        self._make_tls = tls if tls is system_tls else Lazy(tls)
        self._pool_size = pool_size
        self._body_limit = body_limit
        self._idle: list[_Wire] = []
        self._lock = threading.Lock()
        self._warming = 0  # connections :meth:`warm` is opening
        self._warmed = threading.Condition(self._lock)

    def failure(self, phase: Phase, exc: BaseException) -> Exception:
        """The exception a failed request raises (a subclass names its own)."""
        return TransportError(self.service, phase, exc)

    # -- the pool -------------------------------------------------------------------

    def _new(self) -> _Wire:
        """A new connection: TCP, then TLS for https. A certificate the system's CA
        directory alone refused is checked once more against the whole set, on a new
        connection (``_SystemTrust``)."""
        address = (self._name, self._port)  # bytes, as getaddrinfo takes them (typeshed: str)
        tls = self._make_tls() if self._https else None
        while True:
            sock = socket.create_connection(address, timeout=self._connect_timeout)  # type: ignore[arg-type]
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_hostname=self._name)
                sock.settimeout(self._timeout)
                return _Wire(sock)
            except ssl.SSLCertVerificationError:
                sock.close()
                tls = _SYSTEM.widen(tls) if tls is not None else None
                if tls is None:
                    raise
            except BaseException:
                sock.close()
                raise

    def warm(self, connections: int = 1) -> list[threading.Thread]:
        """Start making what this endpoint's first request would otherwise wait for, each
        in a daemon thread of its own: its ``Authorization`` value (for a Google API, the
        instance's access token) and ``connections`` pooled connections (TCP and, for
        ``https``, the TLS context and handshake). Connecting, handshaking and a CA
        bundle's parse let go of Python's lock, so they run while the caller's first
        request does its own work or waits on another host. A failure here is dropped
        and met again by the request that needs the thing. Returns the started threads.
        """
        targets = [(self._warm_connection, True)] * connections
        if self._asks:
            targets.append((self._warm_authorization, False))
        started: list[threading.Thread] = []
        for target, opens in targets:
            if opens:
                with self._lock:
                    self._warming += 1  # counted before it starts: a request may wait for it
            thread = background(target, f"warm-{self.service}")
            if thread is None:  # no thread to be had: each request connects for itself
                if opens:
                    with self._lock:
                        self._warming -= 1
                        self._warmed.notify_all()
                break
            started.append(thread)
        return started

    def _warm_connection(self) -> None:
        wire: _Wire | None = None
        try:
            with contextlib.suppress(Exception):  # met again by the request that connects
                wire = self._new()
        finally:
            with self._lock:
                self._warming -= 1
                if wire is not None and len(self._idle) < self._pool_size:
                    wire.idle_since = time.monotonic()
                    self._idle.append(wire)
                    wire = None
                self._warmed.notify_all()
            if wire is not None:
                wire.close()

    def _warm_authorization(self) -> None:
        with contextlib.suppress(Exception):
            self._authorization()

    def _take(self) -> _Wire:
        now = time.monotonic()
        while True:
            with self._lock:
                while not self._idle and self._warming:
                    # a connection warm() is opening: take it when made, not open another
                    self._warmed.wait()
                if not self._idle:
                    break
                wire = self._idle.pop()
            if now - wire.idle_since < _MAX_IDLE_S and not wire.stale():
                wire.reused = True
                return wire
            wire.close()
        return self._new()

    def _give_back(self, wire: _Wire) -> None:
        wire.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(wire)
                return
        wire.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for wire in idle:
            wire.close()

    # -- requests -------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Pending:
        """Write the request now; read the answer with :meth:`Pending.result`."""
        pending = Pending(self, method, self._prefix + path, body, headers or {})
        pending.start()
        return pending

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send and wait for the answer."""
        return self.send(method, path, body, headers).result()

    def _encode(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> bytes:
        lines = [
            f"{method} {path or '/'} HTTP/1.1",
            f"Host: {self._host_header}",
            f"User-Agent: {self._user_agent}",
            "Accept-Encoding: identity",
        ]
        auth = self._authorization()
        if auth is not None:
            lines.append(f"Authorization: {auth}")
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError("a header may not contain CR or LF")
            lines.append(f"{name}: {value}")
        if body is not None or method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head

    def _write(self, request: bytes) -> _Wire:
        """Send one attempt; retry on a fresh connection only if it could not be sent whole."""
        for fresh in (False, True):
            try:
                wire = self._new() if fresh else self._take()
            except _FAILURES as exc:
                raise self.failure("connect", exc) from None
            try:
                wire.write(request)
            except _FAILURES as exc:
                wire.close()
                if fresh or not wire.reused:
                    raise self.failure("write", exc) from None
                continue  # a pooled connection failed as we wrote: nothing reached the server
            return wire
        raise AssertionError("unreachable")  # pragma: no cover


class Pending:
    """A request written to the wire whose answer is not read yet."""

    __slots__ = ("_endpoint", "_headers", "_method", "_path", "_request", "_started", "_wire")

    def __init__(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> None:
        self._endpoint = endpoint
        self._method = method
        self._path = path
        self._headers = headers
        self._request = endpoint._encode(method, path, body, headers)
        self._wire: _Wire | None = None
        self._started = 0.0

    def start(self) -> None:
        """Write the first attempt."""
        self._started = time.monotonic()
        self._wire = self._endpoint._write(self._request)

    def result(self) -> Answer:
        """The answer; ``retry_statuses`` are retried with backoff within the timeout."""
        endpoint = self._endpoint
        backoff = _FIRST_BACKOFF_S
        while True:
            answer = self._read()
            if answer.status not in endpoint.retry_statuses:
                return answer
            delay = backoff * (0.5 + random.random())  # noqa: S311 - jitter, not secrecy
            if time.monotonic() + delay - self._started > endpoint._timeout:
                return answer
            time.sleep(delay)
            backoff *= 2
            self._wire = endpoint._write(self._request)

    def _read(self) -> Answer:
        endpoint = self._endpoint
        wire, self._wire = self._wire, None
        if wire is None:
            raise endpoint.failure("read", WireError("no request in flight"))
        try:
            status, headers, body, keep, cut = wire.read(self._method, endpoint._body_limit)
        except _FAILURES as exc:
            wire.close()
            raise endpoint.failure("read", exc) from None
        if keep:
            endpoint._give_back(wire)
        else:
            wire.close()
        return Answer(status, body, headers.get("content-type", ""), headers, cut)
