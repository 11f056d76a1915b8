"""Webhook signature schemes: verification as pure functions over raw bytes.

Knows nothing of HTTP frameworks. ``verify`` takes the exact received body, the
request headers (a mapping with lower-case names) and every active secret of
the source, and either returns the scheme's delivery id or raises
:class:`SignatureError`. The caller parses JSON only after this succeeds.

Exceptions
----------
SignatureError
    The only exception raised by ``verify`` for anything the client sent: a
    missing or malformed header, a timestamp outside the window, an invalid
    delivery id, or no signature matching any active secret. ``reason`` is a
    short machine-readable code for logs; the HTTP answer is always the same
    generic 401.

Every comparison is ``hmac.compare_digest``; timestamps are checked in both
directions. ``sign`` produces the headers a provider would send; the CLI
(``hookpress send``/``sign``), the tests and the benchmarks use it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "SCHEMES",
    "Scheme",
    "SignatureError",
    "Verified",
    "valid_id",
]

MAX_ID_LENGTH = 256
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SignatureError(Exception):
    """Any signature, header or timestamp failure.

    ``reason`` is one of: ``missing_header``, ``malformed_signature``,
    ``malformed_timestamp``, ``timestamp_too_old``, ``timestamp_in_future``,
    ``invalid_id``, ``no_secret``, ``no_match``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification tells the caller."""

    delivery_id: str | None  # the scheme's delivery-id header, if it has one


def valid_id(value: str) -> bool:
    """A provider id we accept: 1–256 characters, no control characters (CR/LF included)."""
    return 0 < len(value) <= MAX_ID_LENGTH and not _CONTROL.search(value)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or not value.strip():
        raise SignatureError("missing_header")
    return value.strip()


def _timestamp(raw: str, now: float, tolerance: int | None) -> int:
    if not _TIMESTAMP.match(raw):
        # Non-numeric, float, negative, signed or absurdly long: all the same failure.
        raise SignatureError("malformed_timestamp")
    ts = int(raw)
    if tolerance is not None:
        if ts < now - tolerance:
            raise SignatureError("timestamp_too_old")
        if ts > now + tolerance:
            raise SignatureError("timestamp_in_future")
    return ts


def _delivery_id(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None or value == "":
        return None
    if not valid_id(value):
        raise SignatureError("invalid_id")
    return value


def _required_id(headers: Mapping[str, str], name: str) -> str:
    value = _delivery_id(headers, name)
    if value is None:
        raise SignatureError("missing_header")
    return value


def _b64(value: str, expected_len: int = 32) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed_signature") from None
    if len(raw) != expected_len:
        raise SignatureError("malformed_signature")
    return raw


def _hex(value: str) -> bytes:
    if not _HEX64.match(value):
        raise SignatureError("malformed_signature")
    return bytes.fromhex(value)


# Up to this size the signed bytes are joined and hashed in one C call; above it,
# streamed, so a large body is never copied.
_ONE_SHOT = 32 * 1024


def _mac(key: bytes, prefix: bytes, body: bytes) -> bytes:
    if len(body) <= _ONE_SHOT:
        return hmac.digest(key, prefix + body, "sha256")
    mac = hmac.new(key, prefix, hashlib.sha256)
    mac.update(body)
    return mac.digest()


def _match(candidates: Sequence[bytes], keys: Sequence[bytes], prefix: bytes, body: bytes) -> None:
    if not keys:
        raise SignatureError("no_secret")
    for key in keys:
        expected = _mac(key, prefix, body)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return
    raise SignatureError("no_match")


@functools.lru_cache(maxsize=64)
def _utf8_keys(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(s.encode("utf-8") for s in secrets if s)


class Scheme(Protocol):
    """One provider signature scheme."""

    name: str
    #: the header carrying the provider's delivery id, if the scheme has one
    id_header: str | None
    #: the payload field holding the provider's event id (when no id header)
    payload_id_field: str
    #: the header naming the event's type, for schemes that keep it out of the body
    type_header: str | None
    #: whether the scheme signs a timestamp (else dedupe is the replay guard)
    has_timestamp: bool

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        """Raise SignatureError unless the request is genuinely signed with one of ``secrets``."""
        ...

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        """Return the headers a provider would send for ``body``."""
        ...


class HmacTimestamp:
    """The original contract: base64 HMAC-SHA256 over ``{ts}.`` + body."""

    name = "hmac-timestamp"
    id_header: str | None = None
    payload_id_field = "id"
    type_header: str | None = None
    has_timestamp = True

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        signature = _b64(_header(headers, "x-provider-signature"))
        raw_ts = _header(headers, "x-provider-timestamp")
        _timestamp(raw_ts, now, tolerance)
        _match([signature], _utf8_keys(tuple(secrets)), f"{raw_ts}.".encode(), body)
        return Verified(None)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"{ts}.".encode(), body)
        return {
            "X-Provider-Signature": base64.b64encode(digest).decode(),
            "X-Provider-Timestamp": ts,
        }


class StandardWebhooks:
    """Standard Webhooks (OpenAI, Replicate, Svix, ...): ``{id}.{ts}.`` + body."""

    name = "standard-webhooks"
    id_header: str | None = "webhook-id"
    payload_id_field = "id"
    type_header: str | None = None
    has_timestamp = True
    PREFIX = "whsec_"

    @classmethod
    def key(cls, secret: str) -> bytes:
        """The HMAC key: the base64 after ``whsec_`` (the prefix is optional)."""
        value = secret.removeprefix(cls.PREFIX)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            # A misconfigured secret can never verify anything; it is not the client's fault,
            # but the request still fails closed.
            return b""

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        msg_id = _required_id(headers, "webhook-id")
        raw_ts = _header(headers, "webhook-timestamp")
        _timestamp(raw_ts, now, tolerance)
        candidates: list[bytes] = []
        for entry in _header(headers, "webhook-signature").split(" "):
            if not entry:
                continue
            version, sep, value = entry.partition(",")
            if not sep or not version or "," in value:
                # "v1" with no comma, or "v1,a,b": never a silent ValueError.
                raise SignatureError("malformed_signature")
            if version != "v1":
                continue  # other versions (e.g. v1a, asymmetric) are not ours to check
            candidates.append(_b64(value))
        if not candidates:
            raise SignatureError("malformed_signature")
        keys = _sw_keys(tuple(secrets))
        _match(candidates, keys, f"{msg_id}.{raw_ts}.".encode(), body)
        return Verified(msg_id)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        ts = str(int(now))
        msg_id = delivery_id or "msg_" + hashlib.sha256(body + ts.encode()).hexdigest()[:24]
        digest = _mac(self.key(secret), f"{msg_id}.{ts}.".encode(), body)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }


@functools.lru_cache(maxsize=64)
def _sw_keys(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Decoded Standard Webhooks keys (decoding per request is most of a small request's cost)."""
    return tuple(k for k in (StandardWebhooks.key(s) for s in secrets if s) if k)


class Stripe:
    """Stripe: ``Stripe-Signature: t=…,v1=…`` hex over ``{t}.`` + body, key = raw secret."""

    name = "stripe"
    id_header: str | None = None
    payload_id_field = "id"
    type_header: str | None = None
    has_timestamp = True

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        raw_ts: str | None = None
        candidates: list[bytes] = []
        for item in _header(headers, "stripe-signature").split(","):
            key, sep, value = item.strip().partition("=")
            if not sep or not key or not value:
                raise SignatureError("malformed_signature")
            if key == "t":
                if raw_ts is not None:
                    raise SignatureError("malformed_signature")
                raw_ts = value
            elif key == "v1":
                candidates.append(_hex(value))
            # v0 and unknown schemes are ignored, as Stripe's own libraries do.
        if raw_ts is None:
            raise SignatureError("malformed_timestamp")
        if not candidates:
            raise SignatureError("malformed_signature")
        _timestamp(raw_ts, now, tolerance)
        _match(candidates, _utf8_keys(tuple(secrets)), f"{raw_ts}.".encode(), body)
        return Verified(None)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"{ts}.".encode(), body)
        return {"Stripe-Signature": f"t={ts},v1={digest.hex()}"}


class GitHub:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the body; no timestamp."""

    name = "github"
    id_header: str | None = "x-github-delivery"
    payload_id_field = "id"
    type_header: str | None = "x-github-event"
    has_timestamp = False

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        prefix, sep, value = _header(headers, "x-hub-signature-256").partition("=")
        if prefix != "sha256" or not sep:
            raise SignatureError("malformed_signature")
        candidate = _hex(value)
        delivery = _delivery_id(headers, "x-github-delivery")
        _match([candidate], _utf8_keys(tuple(secrets)), b"", body)
        return Verified(delivery)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        headers = {"X-Hub-Signature-256": "sha256=" + _mac(secret.encode(), b"", body).hex()}
        headers["X-GitHub-Event"] = "ping"
        headers["X-GitHub-Delivery"] = delivery_id or hashlib.sha256(body).hexdigest()[:32]
        return headers


class Slack:
    """Slack: ``X-Slack-Signature: v0=<hex>`` over ``v0:{ts}:`` + body."""

    name = "slack"
    id_header: str | None = None
    # Slack's Events API carries its id as event_id; there is no top-level "id".
    payload_id_field = "event_id"
    type_header: str | None = None
    has_timestamp = True

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        version, sep, value = _header(headers, "x-slack-signature").partition("=")
        if version != "v0" or not sep:
            raise SignatureError("malformed_signature")
        candidate = _hex(value)
        raw_ts = _header(headers, "x-slack-request-timestamp")
        _timestamp(raw_ts, now, tolerance)
        _match([candidate], _utf8_keys(tuple(secrets)), f"v0:{raw_ts}:".encode(), body)
        return Verified(None)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"v0:{ts}:".encode(), body)
        return {"X-Slack-Signature": "v0=" + digest.hex(), "X-Slack-Request-Timestamp": ts}


class Shopify:
    """Shopify: ``X-Shopify-Hmac-SHA256`` base64 over the body; no timestamp."""

    name = "shopify"
    id_header: str | None = "x-shopify-webhook-id"
    payload_id_field = "id"
    type_header: str | None = "x-shopify-topic"
    has_timestamp = False

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
    ) -> Verified:
        candidate = _b64(_header(headers, "x-shopify-hmac-sha256"))
        delivery = _delivery_id(headers, "x-shopify-webhook-id")
        _match([candidate], _utf8_keys(tuple(secrets)), b"", body)
        return Verified(delivery)

    def sign(
        self, body: bytes, secret: str, *, now: float, delivery_id: str | None = None
    ) -> dict[str, str]:
        digest = _mac(secret.encode(), b"", body)
        return {
            "X-Shopify-Hmac-SHA256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": delivery_id or hashlib.sha256(body).hexdigest()[:32],
            "X-Shopify-Topic": "orders/create",
        }


SCHEMES: Mapping[str, Scheme] = {
    s.name: s for s in (HmacTimestamp(), StandardWebhooks(), Stripe(), GitHub(), Slack(), Shopify())
}
