"""Standard Webhooks (and Svix under its own header names): HMAC ``v1`` and Ed25519 ``v1a``."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets as _random
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from hookpress.signatures import _ed25519
from hookpress.signatures._common import (
    Incoming,
    KeyPair,
    Outgoing,
    Scheme,
    SignatureError,
    Verified,
    check_timestamp,
    from_b64,
    header,
    mac,
    match,
    required_id,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["StandardWebhooks"]


class _SwKeys(msgspec.Struct, frozen=True):
    hmac: tuple[bytes, ...]
    ed25519: tuple[Ed25519PublicKey, ...]


def _signatures(value: str) -> tuple[list[bytes], list[bytes]]:
    """The ``v1`` (HMAC) and ``v1a`` (Ed25519) entries of a space-separated signature list."""
    symmetric: list[bytes] = []
    asymmetric: list[bytes] = []
    for entry in value.split(" "):
        if not entry:
            continue
        version, sep, part = entry.partition(",")
        if not sep or not version or "," in part:
            # "v1" with no comma, or "v1,a,b": never a silent ValueError.
            raise SignatureError("malformed_signature")
        if version == "v1":
            symmetric.append(from_b64(part))
        elif version == "v1a":
            asymmetric.append(from_b64(part, 64))
        # other versions are not ours to check
    if not symmetric and not asymmetric:
        raise SignatureError("malformed_signature")
    return symmetric, asymmetric


class StandardWebhooks(Scheme):
    """Standard Webhooks: ``{id}.{ts}.`` + body, ``v1`` (HMAC-SHA256) and ``v1a`` (Ed25519).

    Secrets are ``whsec_<base64>`` (HMAC; the prefix is optional), ``whpk_<base64>``
    (an Ed25519 public key: verifies ``v1a``) or ``whsk_<base64>`` (an Ed25519
    secret key, which holds the public one). A source may hold both kinds at once,
    so moving from symmetric to asymmetric signing is a rotation like any other.

    Svix (Clerk, Resend) is the same scheme under ``svix-`` header names; its own
    library also accepts the ``webhook-`` names, and so does :data:`SVIX`.
    """

    payload_id_field = "id"
    type_header: str | None = None
    has_timestamp = True
    id_signed = True
    HMAC_PREFIX = "whsec_"
    PUBLIC_PREFIX = "whpk_"
    SECRET_PREFIX = "whsk_"  # noqa: S105 - a key prefix, not a value

    def __init__(self, name: str = "standard-webhooks", prefix: str = "webhook") -> None:
        self.name = name
        self.prefix = prefix
        self.id_header: str | None = f"{prefix}-id"

    @classmethod
    def key(cls, secret: str) -> bytes:
        """The HMAC key: the base64 after ``whsec_`` (the prefix is optional)."""
        value = secret.removeprefix(cls.HMAC_PREFIX)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            # A misconfigured secret can never verify anything; it is not the client's fault,
            # but the request still fails closed.
            return b""

    @classmethod
    def seed(cls, secret: str) -> bytes | None:
        """The 32-byte Ed25519 seed of a ``whsk_`` key (32 bytes, or seed + public key)."""
        try:
            raw = base64.b64decode(secret.removeprefix(cls.SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) == 32:
            return raw
        if len(raw) == 64 and _ed25519.public_of(raw[:32]) == raw[32:]:
            return raw[:32]
        return None

    def _get(self, headers: Mapping[str, str], suffix: str) -> str | None:
        value = headers.get(f"{self.prefix}-{suffix}")
        if value is None and self.prefix != "webhook":
            value = headers.get(f"webhook-{suffix}")
        return value

    def check(self, request: Incoming) -> Verified:
        names = ("id", "timestamp", "signature")
        view = {k: v for k in names if (v := self._get(request.headers, k))}
        msg_id = required_id(view, "id")
        raw_ts = header(view, "timestamp")
        check_timestamp(raw_ts, request.now, request.tolerance)
        symmetric, asymmetric = _signatures(header(view, "signature"))
        keys = _sw_keys(request.secrets)
        if not keys.hmac and not keys.ed25519:
            raise SignatureError("no_secret")
        prefix = f"{msg_id}.{raw_ts}.".encode()
        if symmetric and keys.hmac:
            try:
                match(symmetric, keys.hmac, prefix, request.body)
                return Verified(msg_id)
            except SignatureError:
                pass
        if asymmetric and keys.ed25519:
            message = prefix + request.body
            for candidate in asymmetric:
                if _ed25519.verify(keys.ed25519, candidate, message):
                    return Verified(msg_id)
        raise SignatureError("no_match")

    def signed_headers(self, outgoing: Outgoing) -> dict[str, str]:
        body, secret, ts = outgoing.body, outgoing.secret, outgoing.timestamp
        msg_id = (
            outgoing.delivery_id or "msg_" + hashlib.sha256(body + ts.encode()).hexdigest()[:24]
        )
        prefix = f"{msg_id}.{ts}.".encode()
        if secret.startswith(self.SECRET_PREFIX):
            seed = self.seed(secret)
            if seed is None:
                raise ValueError("not a whsk_ Ed25519 secret key")
            signature = "v1a," + base64.b64encode(_ed25519.sign(seed, prefix + body)).decode()
        else:
            signature = "v1," + base64.b64encode(mac(self.key(secret), prefix, body)).decode()
        return {
            f"{self.prefix}-id": msg_id,
            f"{self.prefix}-timestamp": ts,
            f"{self.prefix}-signature": signature,
        }

    def new_secret(self) -> KeyPair:
        value = self.HMAC_PREFIX + base64.b64encode(_random.token_bytes(24)).decode()
        return KeyPair(value, value)

    def new_key_pair(self) -> KeyPair:
        """An Ed25519 pair: ``whpk_`` for the ingress, ``whsk_`` for the sender (``v1a``)."""
        seed, public = _ed25519.pair()
        return KeyPair(
            self.PUBLIC_PREFIX + base64.b64encode(public).decode(),
            self.SECRET_PREFIX + base64.b64encode(seed).decode(),
        )


@functools.lru_cache(maxsize=64)
def _sw_keys(secrets: tuple[str, ...]) -> _SwKeys:
    """Decoded Standard Webhooks keys (decoding per request is most of a small request's cost)."""
    hmac_keys: list[bytes] = []
    public: list[Ed25519PublicKey] = []
    for secret in secrets:
        if not secret:
            continue
        key: Ed25519PublicKey | None = None
        if secret.startswith(StandardWebhooks.PUBLIC_PREFIX):
            try:
                raw = base64.b64decode(
                    secret.removeprefix(StandardWebhooks.PUBLIC_PREFIX), validate=True
                )
            except (binascii.Error, ValueError):
                continue
            key = _ed25519.public_key(raw)
        elif secret.startswith(StandardWebhooks.SECRET_PREFIX):
            seed = StandardWebhooks.seed(secret)
            key = _ed25519.public_key(_ed25519.public_of(seed)) if seed else None
        else:
            decoded = StandardWebhooks.key(secret)
            if decoded:
                hmac_keys.append(decoded)
            continue
        if key is not None:
            public.append(key)
    return _SwKeys(tuple(hmac_keys), tuple(public))
