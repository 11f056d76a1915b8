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

For TLS, :class:`Authority` is a certificate authority made for one test, and
signs the server's certificate (:data:`LOOPBACK`: valid for 127.0.0.1 and localhost).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "DROP",
    "LOOPBACK",
    "Authority",
    "Hang",
    "Reply",
    "ScriptedServer",
    "Seen",
    "json_reply",
]


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


class Authority:
    """A certificate authority made for one test, and server certificates it signs."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self, path: Path) -> str:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def server_context(self, tmp_path: Path, names: list[x509.GeneralName]) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wordpress")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = tmp_path / "server.pem"
        chain.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context


LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
