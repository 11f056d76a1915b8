"""What Pub/Sub and Cloud Scheduler add to a call in the cloud: a signed OIDC token.

The Pub/Sub emulator pushes without a token. To run the functions with push
authentication ON (``nox -s rehearse``), :class:`OidcFront` sits between the
emulator (or a scheduler loop) and the functions: each route stands for one
push subscription or scheduler job and adds ``Authorization: Bearer <token>``
with that subscription's audience and service account, signed by a
:class:`LocalSigner`. The functions trust the signer's certificate only
through the test-only ``HOOKPRESS_PUSH_TEST_CERTS`` (see
``hookpress.pushauth``, which also says why the cloud never can).

Never part of a deployed archive: ``hookpress/local/`` is left out of them.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hookpress.local.faultproxy import BackgroundServer, QuietHandler, QuietHTTPServer
from hookpress.pushauth import TEST_SIGNER_SUBJECT

__all__ = ["GOOGLE_ISSUER", "LocalSigner", "OidcFront", "Route", "b64url", "public_jwk"]

GOOGLE_ISSUER = "https://accounts.google.com"
_DROPPED = {"host", "content-length", "connection", "authorization", "transfer-encoding"}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs and JWKs write bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key: Any, kid: str) -> dict[str, str]:
    """An RSA public key as Google's JSON Web Key Set lists its signing keys."""
    numbers = public_key.public_numbers()
    return {
        "kid": kid,
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
    }


class LocalSigner:
    """An RSA key and a self-signed certificate naming :data:`TEST_SIGNER_SUBJECT`."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        from google.auth import crypt

        self.kid = "hookpress-test-" + secrets.token_hex(4)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_SIGNER_SUBJECT)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        #: the same key as Google's JSON Web Key Set lists its own (a stand-in serves it)
        self.jwk = public_jwk(key.public_key(), self.kid)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = crypt.RSASigner.from_string(pem, key_id=self.kid)  # type: ignore[no-untyped-call]

    def write_certs(self, path: Path) -> Path:
        """The file ``HOOKPRESS_PUSH_TEST_CERTS`` names: ``{kid: PEM}``, mode 0600."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({self.kid: self.cert_pem}, out)
        path.chmod(0o600)
        return path

    def token(self, audience: str, email: str, *, lifetime_s: int = 3600) -> str:
        """A Google-shaped ID token: what Pub/Sub signs for a push subscription's identity."""
        from google.auth import jwt

        now = int(time.time())
        claims = {
            "iss": GOOGLE_ISSUER,
            "aud": audience,
            "azp": "hookpress-local",
            "email": email,
            "email_verified": True,
            "sub": email,
            "iat": now,
            "exp": now + lifetime_s,
        }
        token: bytes = jwt.encode(self._signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()


@dataclass(frozen=True)
class Route:
    """One caller: where its calls go, and the audience and identity its tokens carry."""

    target: str  # the function's local origin, http://127.0.0.1:PORT
    audience: str
    email: str


class _Handler(QuietHandler):
    server: _Server

    def do_POST(self) -> None:
        front = self.server.front
        route_name, _, rest = self.path.lstrip("/").partition("/")
        route = front.routes.get(route_name)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if route is None:
            self._send(404, b"no such route", [])
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
        headers["Authorization"] = f"Bearer {front.signer.token(route.audience, route.email)}"
        target = urlsplit(route.target)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=300)
        try:
            conn.request("POST", "/" + rest, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            self._send(502, b"function unreachable", [])
            return
        finally:
            conn.close()
        with front.lock:
            front.calls.append((route_name, "/" + rest, resp.status))
        kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _DROPPED]
        self._send(resp.status, data, kept)


class _Server(QuietHTTPServer):
    front: OidcFront


class OidcFront(BackgroundServer):
    """Listens on 127.0.0.1; ``POST /<route>/<path>`` is forwarded to the route's target + path."""

    def __init__(self, signer: LocalSigner, routes: dict[str, Route] | None = None) -> None:
        self.signer = signer
        self.routes: dict[str, Route] = dict(routes or {})
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []  # (route, path, status), in order
        server = _Server(("127.0.0.1", 0), _Handler)
        server.front = self
        self._server = server

    def endpoint(self, route: str, path: str = "") -> str:
        """Where a caller reaches ``route`` (give this to the emulator as the push endpoint)."""
        return f"{self.url}/{route}{path}"
