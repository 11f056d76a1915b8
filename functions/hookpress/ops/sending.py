"""Signed webhooks as a provider sends them: for trying a stack, and for curl.

Signing is the provider's scheme's own ``sign`` (:mod:`hookpress.providers`);
the event key is :func:`hookpress.events.event_key` over the provider id the
ingress will derive, so the key printed before sending is the one stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hookpress.backends import BackendError
from hookpress.events import InvalidPayloadId, event_key
from hookpress.payloads import MalformedBody, parse_payload
from hookpress.providers import PROVIDERS

if TYPE_CHECKING:
    import httpx

__all__ = ["SendResult", "SignedRequest", "example_payload", "post", "sign_request"]


def example_payload(provider: str, now: float, nonce: str) -> bytes:
    """A small, realistic event in the provider's own shape, unique per ``nonce``.

    ``provider`` is a provider name (:data:`hookpress.providers.PROVIDERS`);
    every scheme name is also a provider.
    """
    return PROVIDERS[provider].example(now, nonce)


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
    signed_url: str | None = None,
) -> SignedRequest:
    """Sign ``body`` with ``secret`` as the provider (or scheme) ``scheme`` does.

    ``signed_url`` is the public URL a URL-signing provider (Twilio) signs; it
    defaults to ``url``. The event key is computed as the ingress will.
    """
    provider = PROVIDERS[scheme]
    impl = provider.scheme
    headers = impl.sign(body, secret, now=now, delivery_id=delivery_id, url=signed_url or url)
    lower = {k.lower(): v for k, v in headers.items()}
    body_format = "form" if impl.name == "twilio" and "bodySHA256" not in (url or "") else "json"
    pid: str | None
    try:
        payload = parse_payload(body, body_format)
        header_id = lower.get(impl.id_header) if impl.id_header else None
        pid = provider.event_id(header_id, lower, payload, body)
    except (MalformedBody, InvalidPayloadId):
        pid = None
    content_type = (
        "application/x-www-form-urlencoded" if body_format == "form" else "application/json"
    )
    return SignedRequest(
        url=url,
        body=body,
        headers={**headers, "Content-Type": content_type},
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
