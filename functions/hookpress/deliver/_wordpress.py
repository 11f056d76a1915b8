"""The only HTTP client of the deliver function: one pooled client, one URL.

The URL is fixed when the client is built from configuration; nothing in an
event can change where a request goes. Redirects are not followed (a
redirect is a permanent failure: it means the configured URL is wrong, and
following it would send credentials somewhere else).

The client is our own HTTP/1.1 wire (:mod:`hookpress.wire`, the one the
Google APIs go through): pooled keep-alive connections, each request in one
write. It never repeats a request that may have reached WordPress: only one
that could not be sent whole on a pooled connection goes out again, once, on
a new one; every answer, 429 and 5xx included, goes to :func:`classify`, and
Pub/Sub's redelivery is the retry. HTTPS certificates are verified against
the CA set httpx (this client before) used: ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` when set, otherwise certifi's Mozilla bundle.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from hookpress import wire
from hookpress.deliver._errors import (
    AuthenticationFailed,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from hookpress.deliver.transforms import encode_record

if TYPE_CHECKING:
    import threading

__all__ = ["INGEST_ROUTE", "Delivered", "WordPressClient", "classify"]

INGEST_ROUTE = "/ai-guy/v1/ingest"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
# What is kept of a response: enough for a person to read, bounded for Firestore.
KEEP_CHARS = 4_000
_READ_LIMIT = 64 * 1024


class Delivered(msgspec.Struct, frozen=True):
    """WordPress accepted the event."""

    status: int
    body: str
    post_id: int | None


def classify(status: int, body: str) -> Delivered:
    """Map a WordPress answer to Delivered or the right DeliveryError (DESIGN.md)."""
    if 200 <= status < 300:
        post_id: int | None = None
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), int):
            post_id = data["id"]
        return Delivered(status, body, post_id)
    if status in RETRYABLE_STATUSES or status >= 500:
        raise RetryableDeliveryError("wordpress_unavailable", status, body)
    if 300 <= status < 400:
        raise PermanentDeliveryError("redirect_not_followed", status, body)
    if status == 401:
        raise AuthenticationFailed("wordpress_unauthorized", status, body)
    if 400 <= status < 500:
        raise PermanentDeliveryError("wordpress_rejected", status, body)
    raise RetryableDeliveryError("unexpected_status", status, body)


def trusted_cas(env: Mapping[str, str]) -> Callable[[], ssl.SSLContext]:
    """The TLS context WordPress's certificate is checked with, as httpx builds it:
    ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle (read when called)."""
    cafile = env.get("SSL_CERT_FILE") or None
    capath = None if cafile else env.get("SSL_CERT_DIR") or None

    def context() -> ssl.SSLContext:
        if cafile is None and capath is None:
            import certifi

            return ssl.create_default_context(cafile=certifi.where())
        return ssl.create_default_context(cafile=cafile, capath=capath)

    return context


#: what a failed request is called in ``last_error`` and the logs (the names httpx gave)
_FAILED = {"connect": "ConnectError", "write": "WriteError", "read": "ReadError"}


class _WordPressEndpoint(wire.Endpoint):
    """The wire to WordPress: no status retried here, failures retryable DeliveryErrors."""

    def failure(self, phase: wire.Phase, exc: BaseException) -> Exception:
        if isinstance(exc, TimeoutError):
            return RetryableDeliveryError("wordpress_timeout")
        if isinstance(exc, wire.WireError):
            return RetryableDeliveryError("wordpress_RemoteProtocolError")
        return RetryableDeliveryError(f"wordpress_{_FAILED[phase]}")


class WordPressClient:
    """POSTs events to ``{base}/ai-guy/v1/ingest``; thread-safe, one per instance."""

    def __init__(
        self,
        base_url: str,
        user: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int = 32,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + INGEST_ROUTE
        self._user = user.encode()
        self._basic: tuple[str, str] | None = None  # (password, its Authorization value)
        self._endpoint = _WordPressEndpoint(
            "wordpress",
            self.url,
            read_timeout_s,
            user_agent="hookpress-deliver",
            connect_timeout_s=connect_timeout_s,
            tls=trusted_cas(os.environ if env is None else env),
            pool_size=max_connections,
            body_limit=_READ_LIMIT,
        )

    def warm(self) -> list[threading.Thread]:
        """Open a connection now, in a thread, its TLS context made first for an ``https``
        site (a parse of certifi's ~140 CAs, 20 ms on OpenSSL 3.0): the first push's reads
        of its record, body and password wait on the network meanwhile, and its post finds
        the handshake done (:meth:`hookpress.wire.Endpoint.warm`)."""
        return self._endpoint.warm()

    def post(self, record: dict[str, Any], idempotency_key: str, password: str) -> Delivered:
        """Deliver one record; raise a DeliveryError subclass when it did not land."""
        return self.post_body(encode_record(record), idempotency_key, password)

    def _authorization(self, password: str) -> str:
        """``Basic …`` for this password (the last one is kept: it changes on rotation only)."""
        cached = self._basic
        if cached is not None and cached[0] == password:
            return cached[1]
        header = "Basic " + base64.b64encode(self._user + b":" + password.encode()).decode()
        self._basic = (password, header)
        return header

    def post_body(self, content: bytes, idempotency_key: str, password: str) -> Delivered:
        """:meth:`post` of a record already encoded (:func:`encode_record`)."""
        answer = self._endpoint.request(
            "POST",
            "",
            content,
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "Authorization": self._authorization(password),
            },
        )
        body = answer.body.decode("utf-8", errors="replace")[:KEEP_CHARS]
        return classify(answer.status, body)

    def close(self) -> None:
        """Close the pool."""
        self._endpoint.close()
