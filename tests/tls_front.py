"""HTTPS in front of a local plain-HTTP server, as the cloud's endpoints speak it.

In the cloud every Google API the functions call (Secret Manager, Cloud Storage,
Firestore, Pub/Sub, Google's token-signing keys) and a WordPress site worth the
name answer over TLS; locally the emulators and stand-ins answer plain HTTP. A
client that never makes a TLS context or does a handshake skips what its first
request costs in the cloud, so the benchmark's deployed configuration puts one
of these in front of each (bench/run.py, ``_cloud_stand_ins``).

:class:`TLSFront` accepts TLS on 127.0.0.1 with a certificate from a test
:class:`~tests.local_http.Authority` and relays each connection's bytes to the
server behind it, one thread per connection. :meth:`TLSFront.hold` leaves new
connections' handshakes waiting, as a server slow to answer, until
:meth:`TLSFront.release` lets them go ahead or drops them, as a server that gave
up on a client gone quiet. :func:`trust_bundle` writes the
system's CA bundle with that authority's certificate appended: a client told to
trust it (``SSL_CERT_FILE``) parses as many certificates as it would in the
cloud, and trusts the fronts too. :func:`trust_directory` does the same for
OpenSSL's hashed CA directory (``SSL_CERT_DIR``), which the functions' own
context reads (``hookpress.wire.system_tls``).
"""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hookpress import wire
from tests.local_http import LOOPBACK, Authority

__all__ = ["TLSFront", "fresh_system_tls", "trust_bundle", "trust_directory"]

_IDLE_S = 60.0  # a relayed connection with no bytes either way for this long is closed


class TLSFront:
    """TLS on ``127.0.0.1:<port>``, relayed as plain bytes to the server at ``upstream``
    (an ``http://host:port`` URL; a path in it is not used)."""

    def __init__(self, upstream: str, authority: Authority, workdir: Path) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"not an http://host:port URL: {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        workdir.mkdir(parents=True, exist_ok=True)
        self._context = authority.server_context(workdir, LOOPBACK)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0  # TCP connections taken from the listener
        self.connections = 0  # of those, handshaken and relayed
        self._gate = threading.Condition()
        self._holding = False
        self._held: list[socket.socket] = []  # accepted, their handshakes waiting
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def url(self, path: str = "") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        self.release(drop=True)

    def hold(self) -> None:
        """From now on, accept connections but leave their handshakes waiting (the client
        has sent its hello; no answer comes) until :meth:`release`."""
        with self._gate:
            self._holding = True

    def wait_held(self, count: int, timeout_s: float) -> int:
        """Wait until ``count`` connections are held, for at most ``timeout_s``; how many are."""
        with self._gate:
            self._gate.wait_for(lambda: len(self._held) >= count, timeout_s)
            return len(self._held)

    def release(self, *, drop: bool = False) -> None:
        """Stop holding. The connections held so far shake hands now, or, with ``drop``,
        are closed with their hellos unread (the client reads a reset)."""
        with self._gate:
            held, self._held = self._held, []
            self._holding = False
            if drop:
                for raw in held:
                    raw.close()
            self._gate.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with self._gate:
            if self._holding:
                self._held.append(raw)
                self._gate.notify_all()
                self._gate.wait_for(lambda: raw not in self._held)
                if raw.fileno() == -1:
                    return  # dropped by release()
        try:
            client = self._context.wrap_socket(raw, server_side=True)  # the handshake
        except OSError:  # ssl.SSLError is an OSError: a client that refused our certificate
            raw.close()
            return
        try:
            upstream = socket.create_connection(self._upstream, timeout=10)
        except OSError:
            client.close()
            return
        self.connections += 1
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            _relay(client, upstream)
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()


def _relay(client: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Bytes both ways until either side closes; one thread, so the TLS socket is only ever
    used from it (an SSL object must not be read and written from two threads at once)."""
    upstream.settimeout(None)
    while True:
        # bytes OpenSSL has decrypted already are not on the socket for select to see
        ready = [client] if client.pending() else []
        if not ready:
            ready, _, _ = select.select([client, upstream], [], [], _IDLE_S)
            if not ready:
                return
        for sock in ready:
            try:
                data = sock.recv(65536)  # blocking: a TLS record not yet whole is waited for
            except OSError:
                return
            if not data:
                return
            (upstream if sock is client else client).sendall(data)


def trust_bundle(authority: Authority, path: Path) -> str:
    """The system's CA bundle and ``authority``'s certificate, in one file at ``path``."""
    system = ssl.get_default_verify_paths().cafile
    bundle = Path(system).read_bytes() if system else b""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bundle + b"\n" + Path(authority.pem(path.with_suffix(".ca.pem"))).read_bytes())
    return str(path)


def trust_directory(authority: Authority | None, path: Path, *, system: bool = True) -> str:
    """A hashed CA directory at ``path``, as OpenSSL looks CAs up in one (``<subject
    hash>.<n>``, c_rehash(1)): the system directory's entries unless ``system`` is false,
    and ``authority``'s certificate if one is given (a directory already there is replaced)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    taken: set[str] = set()
    capath = ssl.get_default_verify_paths().openssl_capath
    if system and Path(capath).is_dir():
        for entry in Path(capath).iterdir():
            if _HASHED.match(entry.name):
                (path / entry.name).symlink_to(entry.resolve())
                taken.add(entry.name)
    if authority is not None:
        pem = authority.pem(path / "authority.pem")
        subject_hash = subprocess.run(
            ["openssl", "x509", "-noout", "-subject_hash", "-in", pem],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        n = 0
        while f"{subject_hash}.{n}" in taken:
            n += 1
        (path / f"{subject_hash}.{n}").symlink_to("authority.pem")
    return str(path)


_HASHED = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def fresh_system_tls(monkeypatch: Any) -> list[tuple[str, ssl.SSLContext]]:
    """The process's shared contexts (``hookpress.wire.system_tls``) made afresh on their
    next use, so they read the ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` the test set; each
    context made, to count: ``("directory", context)`` for the CA directory alone,
    ``("whole", context)`` for the whole set (the bundle file parsed)."""
    made: list[tuple[str, ssl.SSLContext]] = []

    def make(**where: Any) -> ssl.SSLContext:
        made.append(("directory" if where else "whole", ssl.create_default_context(**where)))
        return made[-1][1]

    monkeypatch.setattr(wire, "_SYSTEM", wire._SystemTrust(make))
    return made
