"""The shared-key HMAC-SHA256 schemes: hookpress's own, Stripe and kin, GitHub, Slack, Shopify.

Each says only where its signature, timestamp and delivery id are and what
the MAC covers; :class:`~hookpress.signatures._common.HmacScheme` does the rest.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from hookpress.signatures._common import (
    HmacScheme,
    SignatureError,
    Signed,
    from_b64,
    from_hex,
    header,
)

__all__ = ["GitHub", "HmacTimestamp", "Shopify", "Slack", "TimestampedHmac"]


def _prefixed(value: str, name: str) -> str:
    """The value after ``name=`` (``sha256=…``, ``v0=…``); malformed otherwise."""
    prefix, sep, rest = value.partition("=")
    if prefix != name or not sep:
        raise SignatureError("malformed_signature")
    return rest


class HmacTimestamp(HmacScheme):
    """The original contract: base64 HMAC-SHA256 over ``{ts}.`` + body."""

    name = "hmac-timestamp"

    def read(self, headers: Mapping[str, str]) -> Signed:
        signature = from_b64(header(headers, "x-provider-signature"))
        return Signed([signature], header(headers, "x-provider-timestamp"))

    def prefix(self, timestamp: str | None) -> bytes:
        return f"{timestamp}.".encode()

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        return {
            "X-Provider-Signature": base64.b64encode(digest).decode(),
            "X-Provider-Timestamp": timestamp,
        }


def _kv_pairs(value: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for item in value.split(separator):
        key, sep, part = item.strip().partition("=")
        if not sep or not key or not part:
            raise SignatureError("malformed_signature")
        pairs.append((key, part))
    return pairs


class TimestampedHmac(HmacScheme):
    """A ``key=value`` list header with a timestamp and hex HMAC-SHA256 signatures.

    Stripe (``Stripe-Signature: t=…,v1=…``, over ``{t}.`` + body), ElevenLabs
    (``ElevenLabs-Signature: t=…,v0=…``, over ``{t}.`` + body) and Paddle
    (``Paddle-Signature: ts=…;h1=…``, over ``{ts}:`` + body) differ only in these
    names. Several signatures may be listed (rotation); unknown keys are ignored,
    as the providers' own libraries do; the key is the secret's UTF-8 bytes.
    """

    def __init__(
        self,
        name: str,
        header: str,
        separator: str,
        ts_key: str,
        sig_key: str,
        joiner: str,
        secret_prefix: str = "",
    ) -> None:
        self.name = name
        self.header_name = header
        self.header = header.lower()
        self.separator = separator
        self.ts_key = ts_key
        self.sig_key = sig_key
        self.joiner = joiner
        self.secret_prefix = secret_prefix

    def read(self, headers: Mapping[str, str]) -> Signed:
        raw_ts: str | None = None
        candidates: list[bytes] = []
        for key, value in _kv_pairs(header(headers, self.header), self.separator):
            if key == self.ts_key:
                if raw_ts is not None:
                    raise SignatureError("malformed_signature")
                raw_ts = value
            elif key == self.sig_key:
                candidates.append(from_hex(value))
        if raw_ts is None:
            raise SignatureError("malformed_timestamp")
        if not candidates:
            raise SignatureError("malformed_signature")
        return Signed(candidates, raw_ts)

    def prefix(self, timestamp: str | None) -> bytes:
        return f"{timestamp}{self.joiner}".encode()

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        value = f"{self.ts_key}={timestamp}{self.separator}{self.sig_key}={digest.hex()}"
        return {self.header_name: value}


class GitHub(HmacScheme):
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the body; no timestamp."""

    name = "github"
    id_header: str | None = "x-github-delivery"
    type_header: str | None = "x-github-event"
    has_timestamp = False

    def read(self, headers: Mapping[str, str]) -> Signed:
        return Signed([from_hex(_prefixed(header(headers, "x-hub-signature-256"), "sha256"))])

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        return {
            "X-Hub-Signature-256": "sha256=" + digest.hex(),
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
        }


class Slack(HmacScheme):
    """Slack: ``X-Slack-Signature: v0=<hex>`` over ``v0:{ts}:`` + body."""

    name = "slack"
    # Slack's Events API carries its id as event_id; there is no top-level "id".
    payload_id_field = "event_id"

    def read(self, headers: Mapping[str, str]) -> Signed:
        candidate = from_hex(_prefixed(header(headers, "x-slack-signature"), "v0"))
        return Signed([candidate], header(headers, "x-slack-request-timestamp"))

    def prefix(self, timestamp: str | None) -> bytes:
        return f"v0:{timestamp}:".encode()

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        return {"X-Slack-Signature": "v0=" + digest.hex(), "X-Slack-Request-Timestamp": timestamp}


class Shopify(HmacScheme):
    """Shopify: ``X-Shopify-Hmac-SHA256`` base64 over the body; no timestamp."""

    name = "shopify"
    id_header: str | None = "x-shopify-webhook-id"
    type_header: str | None = "x-shopify-topic"
    has_timestamp = False

    def read(self, headers: Mapping[str, str]) -> Signed:
        return Signed([from_b64(header(headers, "x-shopify-hmac-sha256"))])

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        return {
            "X-Shopify-Hmac-SHA256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Topic": "orders/create",
        }
