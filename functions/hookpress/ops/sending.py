"""Signed webhooks as a provider sends them: for trying a stack, and for curl.

Signing is the scheme's own ``sign`` (:data:`hookpress.signatures.SCHEMES`);
the event key is :func:`hookpress.events.event_key` over the provider id the
ingress will derive, so the key printed before sending is the one stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError
from hookpress.events import InvalidPayloadId, event_key, provider_event_id
from hookpress.jsonstrict import MalformedBody, parse_object
from hookpress.signatures import SCHEMES

if TYPE_CHECKING:
    import httpx

__all__ = ["SendResult", "SignedRequest", "example_payload", "post", "sign_request"]


def example_payload(scheme: str, now: float, nonce: str) -> bytes:
    """A small, valid event in the shape the scheme's providers send, unique per ``nonce``."""
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload: dict[str, Any]
    if scheme == "stripe":
        payload = {
            "id": f"evt_{nonce}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(now),
            "data": {"object": {"id": f"pi_{nonce}", "object": "payment_intent", "amount": 2000}},
        }
    elif scheme == "standard-webhooks":
        payload = {
            "type": "response.completed",
            "timestamp": when,
            "data": {"id": f"resp_{nonce}", "status": "completed"},
        }
    elif scheme == "github":
        payload = {"zen": "Keep it logically awesome.", "hook_id": 1, "nonce": nonce}
    elif scheme == "slack":
        payload = {
            "type": "event_callback",
            "event_id": f"Ev{nonce.upper()}",
            "event_time": int(now),
            "event": {"type": "app_mention", "text": "hello from hookpress"},
        }
    elif scheme == "shopify":
        payload = {"id": int(nonce[:12], 16), "name": f"#{nonce[:6]}", "created_at": when}
    else:  # hmac-timestamp and anything generic
        payload = {
            "id": f"evt_{nonce}",
            "status": "completed",
            "summary": "An example event sent by hookpress.",
            "occurred_at": when,
        }
    return json.dumps(payload).encode()


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What to POST: body, headers (with Content-Type) and the ids it will be stored under."""

    url: str | None
    body: bytes
    headers: dict[str, str]
    provider_id: str | None  # None when the body is not a JSON object the ingress accepts
    event_key: str | None


def sign_request(
    *,
    source: str,
    scheme: str,
    secret: str,
    body: bytes,
    now: float,
    url: str | None = None,
    delivery_id: str | None = None,
) -> SignedRequest:
    """Sign ``body`` with ``secret`` as ``scheme`` does; compute the event key."""
    impl = SCHEMES[scheme]
    headers = impl.sign(body, secret, now=now, delivery_id=delivery_id)
    lower = {k.lower(): v for k, v in headers.items()}
    pid: str | None
    try:
        payload = parse_object(body)
        header_id = lower.get(impl.id_header) if impl.id_header else None
        pid = provider_event_id(header_id, payload, body, impl.payload_id_field)
    except (MalformedBody, InvalidPayloadId):
        pid = None
    return SignedRequest(
        url=url,
        body=body,
        headers={**headers, "Content-Type": "application/json"},
        provider_id=pid,
        event_key=event_key(source, pid) if pid is not None else None,
    )


@dataclass(frozen=True, slots=True)
class SendResult:
    """The ingress's answer."""

    http_status: int
    status: str  # accepted, duplicate, rejected, unavailable, ...
    event_id: str | None
    error: str | None
    retry_after: str | None

    @property
    def ok(self) -> bool:
        """Accepted now, or already known."""
        return self.http_status in {200, 202}


def post(client: httpx.Client, request: SignedRequest) -> SendResult:
    """POST the request; BackendError("ingress", …) when nothing answers."""
    import httpx

    if request.url is None:
        raise ValueError("the request has no URL")
    try:
        response = client.post(request.url, content=request.body, headers=request.headers)
    except httpx.HTTPError as exc:
        raise BackendError("ingress", type(exc).__name__) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    status = data.get("status")
    event_id = data.get("event_id")
    error = data.get("error")
    return SendResult(
        http_status=response.status_code,
        status=status if isinstance(status, str) else f"http {response.status_code}",
        event_id=event_id if isinstance(event_id, str) else None,
        error=error if isinstance(error, str) else None,
        retry_after=response.headers.get("retry-after"),
    )
