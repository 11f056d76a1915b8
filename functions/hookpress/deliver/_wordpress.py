"""The only HTTP client of the deliver function: one pooled client, one URL.

The URL is fixed when the client is built from configuration; nothing in an
event can change where a request goes. Redirects are not followed (a
redirect is a permanent failure: it means the configured URL is wrong, and
following it would send credentials somewhere else).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from hookpress.deliver._errors import (
    AuthenticationFailed,
    PermanentDeliveryError,
    RetryableDeliveryError,
)

__all__ = ["INGEST_ROUTE", "Delivered", "WordPressClient", "classify"]

INGEST_ROUTE = "/ai-guy/v1/ingest"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
# What is kept of a response: enough for a person to read, bounded for Firestore.
KEEP_CHARS = 4_000
_READ_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Delivered:
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + INGEST_ROUTE
        self._user = user
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": "hookpress-deliver", "Accept": "application/json"},
            transport=transport,
        )

    def post(self, record: dict[str, Any], idempotency_key: str, password: str) -> Delivered:
        """Deliver one record; raise a DeliveryError subclass when it did not land."""
        content = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            with self._client.stream(
                "POST",
                self.url,
                content=content,
                headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
                auth=httpx.BasicAuth(self._user, password),
            ) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) >= _READ_LIMIT:
                        break
                status = response.status_code
        except httpx.TimeoutException:
            raise RetryableDeliveryError("wordpress_timeout") from None
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"wordpress_{type(exc).__name__}") from None
        body = raw.decode("utf-8", errors="replace")[:KEEP_CHARS]
        return classify(status, body)

    def close(self) -> None:
        """Close the pool."""
        self._client.close()
