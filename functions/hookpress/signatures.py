"""Webhook signature schemes: verification as pure functions over raw bytes.

Knows nothing of HTTP frameworks. ``verify`` takes the exact received body, the
request headers (a mapping with lower-case names), every active secret of the
source and, for schemes that sign it (Twilio), the public URL the provider
called; it either returns what the verification established or raises
:class:`SignatureError`. The caller parses the body only after this succeeds.

Exceptions
----------
SignatureError
    The only exception raised by ``verify`` for anything the client sent: a
    missing or malformed header, a timestamp outside the window, an invalid
    delivery id, or no signature matching any active secret. ``reason`` is a
    short machine-readable code for logs; the HTTP answer is always the same
    generic 401.

Every HMAC comparison is ``hmac.compare_digest``; asymmetric signatures
(Standard Webhooks ``v1a`` and fal.ai, both Ed25519) are checked by
``cryptography``. Timestamps are checked in both directions. ``sign``
produces the headers a provider would send; the CLI (``hookpress
send``/``sign``), the tests and the benchmarks use it. ``new_secret`` makes a
key in the form the scheme's providers hand out: for asymmetric schemes the
value the ingress holds (a public key) differs from the one that signs.

Which provider uses which scheme, and where its event id, type and time come
from, is :mod:`hookpress.providers`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets as _random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from hookpress.payloads import MalformedBody, form_pairs

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "SCHEMES",
    "KeyPair",
    "Scheme",
    "SignatureError",
    "Verified",
    "valid_id",
]

MAX_ID_LENGTH = 256
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SignatureError(Exception):
    """Any signature, header or timestamp failure.

    ``reason`` is one of: ``missing_header``, ``malformed_signature``,
    ``malformed_timestamp``, ``timestamp_too_old``, ``timestamp_in_future``,
    ``invalid_id``, ``no_secret``, ``no_match``, ``malformed_body`` (a form
    body whose parameters are signed but cannot be read), ``no_url`` (a
    URL-signing scheme with no public URL configured).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification tells the caller."""

    delivery_id: str | None  # the scheme's delivery-id header, if it has one
    body_format: str = "json"  # how to read the body: "json" or "form" (payloads.py)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A new key: what the ingress holds (``verify``) and what a sender signs with (``sign``).

    For HMAC schemes both are the same secret.
    """

    verify: str
    sign: str


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


def _hex(value: str, expected_len: int = 32) -> bytes:
    if len(value) != 2 * expected_len or not _HEX.match(value):
        raise SignatureError("malformed_signature")
    return bytes.fromhex(value)


# Up to this size the signed bytes are joined and hashed in one C call; above it,
# streamed, so a large body is never copied.
_ONE_SHOT = 32 * 1024


def _mac(key: bytes, prefix: bytes, body: bytes, digest: str = "sha256") -> bytes:
    if len(body) <= _ONE_SHOT:
        return hmac.digest(key, prefix + body, digest)
    mac = hmac.new(key, prefix, digest)
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


# -- Ed25519 (cryptography is imported on first use: HMAC-only instances never load it) ----


def _ed25519_public(raw: bytes) -> Ed25519PublicKey | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) != 32:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def _ed25519_verify(keys: Sequence[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def _ed25519_sign(seed: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def _ed25519_pair() -> tuple[bytes, bytes]:
    """A new (seed, public key) pair."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    seed = _random.token_bytes(32)
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return seed, public


def _ed25519_public_of(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


class Scheme(Protocol):
    """One signature scheme."""

    name: str
    #: the header carrying the provider's delivery id, if the scheme has one
    id_header: str | None
    #: the payload field holding the provider's event id (when no id header)
    payload_id_field: str
    #: the header naming the event's type, for schemes that keep it out of the body
    type_header: str | None
    #: whether the scheme signs a timestamp (else dedupe is the replay guard)
    has_timestamp: bool
    #: whether the delivery-id header is covered by the signature
    id_signed: bool

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        """Raise SignatureError unless the request is genuinely signed with one of ``secrets``."""
        ...

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        """Return the headers a provider would send for ``body``."""
        ...

    def new_secret(self) -> KeyPair:
        """A fresh key in the form the scheme's providers hand out."""
        ...


class _Hmac:
    """Defaults shared by the schemes whose secret is one shared HMAC key."""

    id_header: str | None = None
    payload_id_field = "id"
    type_header: str | None = None
    has_timestamp = True
    id_signed = False

    def new_secret(self) -> KeyPair:
        value = _random.token_hex(16)
        return KeyPair(value, value)


class HmacTimestamp(_Hmac):
    """The original contract: base64 HMAC-SHA256 over ``{ts}.`` + body."""

    name = "hmac-timestamp"

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        signature = _b64(_header(headers, "x-provider-signature"))
        raw_ts = _header(headers, "x-provider-timestamp")
        _timestamp(raw_ts, now, tolerance)
        _match([signature], _utf8_keys(tuple(secrets)), f"{raw_ts}.".encode(), body)
        return Verified(None)

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"{ts}.".encode(), body)
        return {
            "X-Provider-Signature": base64.b64encode(digest).decode(),
            "X-Provider-Timestamp": ts,
        }


@dataclass(frozen=True, slots=True)
class _SwKeys:
    hmac: tuple[bytes, ...]
    ed25519: tuple[Ed25519PublicKey, ...]


class StandardWebhooks:
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
        if len(raw) == 64 and _ed25519_public_of(raw[:32]) == raw[32:]:
            return raw[:32]
        return None

    def _get(self, headers: Mapping[str, str], suffix: str) -> str | None:
        value = headers.get(f"{self.prefix}-{suffix}")
        if value is None and self.prefix != "webhook":
            value = headers.get(f"webhook-{suffix}")
        return value

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        view = {k: v for k in ("id", "timestamp", "signature") if (v := self._get(headers, k))}
        msg_id = _required_id(view, "id")
        raw_ts = _header(view, "timestamp")
        _timestamp(raw_ts, now, tolerance)
        symmetric: list[bytes] = []
        asymmetric: list[bytes] = []
        for entry in _header(view, "signature").split(" "):
            if not entry:
                continue
            version, sep, value = entry.partition(",")
            if not sep or not version or "," in value:
                # "v1" with no comma, or "v1,a,b": never a silent ValueError.
                raise SignatureError("malformed_signature")
            if version == "v1":
                symmetric.append(_b64(value))
            elif version == "v1a":
                asymmetric.append(_b64(value, 64))
            # other versions are not ours to check
        if not symmetric and not asymmetric:
            raise SignatureError("malformed_signature")
        keys = _sw_keys(tuple(secrets))
        if not keys.hmac and not keys.ed25519:
            raise SignatureError("no_secret")
        prefix = f"{msg_id}.{raw_ts}.".encode()
        if symmetric and keys.hmac:
            try:
                _match(symmetric, keys.hmac, prefix, body)
                return Verified(msg_id)
            except SignatureError:
                pass
        if asymmetric and keys.ed25519:
            message = prefix + body
            for candidate in asymmetric:
                if _ed25519_verify(keys.ed25519, candidate, message):
                    return Verified(msg_id)
        raise SignatureError("no_match")

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        ts = str(int(now))
        msg_id = delivery_id or "msg_" + hashlib.sha256(body + ts.encode()).hexdigest()[:24]
        prefix = f"{msg_id}.{ts}.".encode()
        if secret.startswith(self.SECRET_PREFIX):
            seed = self.seed(secret)
            if seed is None:
                raise ValueError("not a whsk_ Ed25519 secret key")
            signature = "v1a," + base64.b64encode(_ed25519_sign(seed, prefix + body)).decode()
        else:
            signature = "v1," + base64.b64encode(_mac(self.key(secret), prefix, body)).decode()
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
        seed, public = _ed25519_pair()
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
            key = _ed25519_public(raw)
        elif secret.startswith(StandardWebhooks.SECRET_PREFIX):
            seed = StandardWebhooks.seed(secret)
            key = _ed25519_public(_ed25519_public_of(seed)) if seed else None
        else:
            decoded = StandardWebhooks.key(secret)
            if decoded:
                hmac_keys.append(decoded)
            continue
        if key is not None:
            public.append(key)
    return _SwKeys(tuple(hmac_keys), tuple(public))


def _kv_pairs(header: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for item in header.split(separator):
        key, sep, value = item.strip().partition("=")
        if not sep or not key or not value:
            raise SignatureError("malformed_signature")
        pairs.append((key, value))
    return pairs


class TimestampedHmac(_Hmac):
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

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        raw_ts: str | None = None
        candidates: list[bytes] = []
        for key, value in _kv_pairs(_header(headers, self.header), self.separator):
            if key == self.ts_key:
                if raw_ts is not None:
                    raise SignatureError("malformed_signature")
                raw_ts = value
            elif key == self.sig_key:
                candidates.append(_hex(value))
        if raw_ts is None:
            raise SignatureError("malformed_timestamp")
        if not candidates:
            raise SignatureError("malformed_signature")
        _timestamp(raw_ts, now, tolerance)
        prefix = f"{raw_ts}{self.joiner}".encode()
        _match(candidates, _utf8_keys(tuple(secrets)), prefix, body)
        return Verified(None)

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"{ts}{self.joiner}".encode(), body)
        value = f"{self.ts_key}={ts}{self.separator}{self.sig_key}={digest.hex()}"
        return {self.header_name: value}

    def new_secret(self) -> KeyPair:
        value = self.secret_prefix + _random.token_hex(16)
        return KeyPair(value, value)


class GitHub(_Hmac):
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the body; no timestamp."""

    name = "github"
    id_header: str | None = "x-github-delivery"
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
        url: str | None = None,
    ) -> Verified:
        prefix, sep, value = _header(headers, "x-hub-signature-256").partition("=")
        if prefix != "sha256" or not sep:
            raise SignatureError("malformed_signature")
        candidate = _hex(value)
        delivery = _delivery_id(headers, "x-github-delivery")
        _match([candidate], _utf8_keys(tuple(secrets)), b"", body)
        return Verified(delivery)

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        headers = {"X-Hub-Signature-256": "sha256=" + _mac(secret.encode(), b"", body).hex()}
        headers["X-GitHub-Event"] = "ping"
        headers["X-GitHub-Delivery"] = delivery_id or hashlib.sha256(body).hexdigest()[:32]
        return headers


class Slack(_Hmac):
    """Slack: ``X-Slack-Signature: v0=<hex>`` over ``v0:{ts}:`` + body."""

    name = "slack"
    # Slack's Events API carries its id as event_id; there is no top-level "id".
    payload_id_field = "event_id"

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
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
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        ts = str(int(now))
        digest = _mac(secret.encode(), f"v0:{ts}:".encode(), body)
        return {"X-Slack-Signature": "v0=" + digest.hex(), "X-Slack-Request-Timestamp": ts}


class Shopify(_Hmac):
    """Shopify: ``X-Shopify-Hmac-SHA256`` base64 over the body; no timestamp."""

    name = "shopify"
    id_header: str | None = "x-shopify-webhook-id"
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
        url: str | None = None,
    ) -> Verified:
        candidate = _b64(_header(headers, "x-shopify-hmac-sha256"))
        delivery = _delivery_id(headers, "x-shopify-webhook-id")
        _match([candidate], _utf8_keys(tuple(secrets)), b"", body)
        return Verified(delivery)

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        digest = _mac(secret.encode(), b"", body)
        return {
            "X-Shopify-Hmac-SHA256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": delivery_id or hashlib.sha256(body).hexdigest()[:32],
            "X-Shopify-Topic": "orders/create",
        }


class Twilio(_Hmac):
    """Twilio: ``X-Twilio-Signature``, base64 HMAC of the URL Twilio called + sorted parameters.

    Twilio posts ``application/x-www-form-urlencoded``; the signed string is the
    full URL (with its query) followed by each POST parameter's name and value,
    sorted by name (twilio-python's ``RequestValidator``). For a JSON body Twilio
    adds ``bodySHA256=<hex sha256 of the body>`` to the URL and signs the URL
    alone. HMAC-SHA1 keyed with the account's Auth Token, or HMAC-SHA256 when the
    unsigned ``X-Twilio-Webhooks-Signature-Settings`` header names it (a shared
    key); either way the secret is needed to sign. Like Twilio's library, the URL
    is tried with and without the scheme's default port.

    The URL is not taken from the request: behind Cloud Run the function sees its
    own ``*.run.app`` host, not the one Twilio was configured with. The ingress
    passes the source's configured public URL plus the request's query string.
    """

    name = "twilio"
    has_timestamp = False
    _ALGORITHMS: Mapping[str, tuple[str, int]] = {
        "HMAC_SHA1": ("sha1", 20),
        "HMAC_SHA256": ("sha256", 32),
    }

    def _algorithm(self, headers: Mapping[str, str]) -> tuple[str, int]:
        for part in headers.get("x-twilio-webhooks-signature-settings", "").split(","):
            name, sep, value = part.partition("=")
            if sep and name.strip() == "algorithm" and value.strip():
                found = self._ALGORITHMS.get(value.strip().upper())
                if found is None:
                    raise SignatureError("malformed_signature")
                return found
        return self._ALGORITHMS["HMAC_SHA1"]

    @staticmethod
    def _urls(url: str) -> list[str]:
        """The URL as given, and with/without the default port (Twilio signs either)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        default = 443 if parts.scheme == "https" else 80
        bare = urlunsplit(parts._replace(netloc=host))
        ported = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
        return list(dict.fromkeys([url, bare, ported]))

    @staticmethod
    def signed_string(url: str, pairs: Sequence[tuple[str, str]]) -> str:
        """The URL followed by name+value of each parameter, sorted by name then value."""
        values: dict[str, set[str]] = {}
        for name, value in pairs:
            values.setdefault(name, set()).add(value)
        return url + "".join(n + v for n in sorted(values) for v in sorted(values[n]))

    def _body_hash(self, url: str) -> str | None:
        query = urlsplit(url).query
        found = [v for k, v in form_pairs(query.encode(), limit=100) if k == "bodySHA256"]
        return found[0] if found else None

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        if not url:
            raise SignatureError("no_url")
        digest, size = self._algorithm(headers)
        signature = _b64(_header(headers, "x-twilio-signature"), size)
        try:
            body_hash = self._body_hash(url)
        except MalformedBody:
            raise SignatureError("malformed_signature") from None
        pairs: list[tuple[str, str]] = []
        body_format = "form"
        if body_hash is not None:
            # JSON body: the URL carries the body's hash and the URL alone is signed.
            if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), body_hash.lower()):
                raise SignatureError("no_match")
            body_format = "json"
        else:
            try:
                pairs = form_pairs(body)
            except MalformedBody:
                raise SignatureError("malformed_body") from None
        keys = _utf8_keys(tuple(secrets))
        if not keys:
            raise SignatureError("no_secret")
        for candidate_url in self._urls(url):
            signed = self.signed_string(candidate_url, pairs).encode("utf-8")
            for key in keys:
                if hmac.compare_digest(hmac.digest(key, signed, digest), signature):
                    return Verified(None, body_format)
        raise SignatureError("no_match")

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        if not url:
            raise ValueError("Twilio signs the URL it calls: give the source's public URL")
        pairs = [] if self._body_hash(url) is not None else form_pairs(body)
        signed = self.signed_string(url, pairs).encode("utf-8")
        return {
            "X-Twilio-Signature": base64.b64encode(
                hmac.digest(secret.encode(), signed, "sha1")
            ).decode(),
            "I-Twilio-Idempotency-Token": delivery_id or hashlib.sha256(body).hexdigest()[:36],
        }

    def new_secret(self) -> KeyPair:
        value = _random.token_hex(16)  # an Auth Token is 32 hex characters
        return KeyPair(value, value)


class Fal:
    """fal.ai: Ed25519 over ``{request_id}\\n{user_id}\\n{timestamp}\\n{hex sha256(body)}``.

    Headers ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` and
    ``-Signature`` (hex). fal publishes its public keys as a JSON Web Key Set
    (``https://rest.fal.ai/.well-known/jwks.json``, keys ``kty: OKP``, ``crv:
    Ed25519``, ``x`` base64url). Each secret version holds such a set (or one
    JWK); ``hookpress keys refresh`` stores a new version when fal's set changes.
    Nothing is fetched at request time. A JWK holding ``d`` (a private key, only
    ever made locally by :meth:`new_secret`) signs.
    """

    name = "fal"
    id_header: str | None = "x-fal-webhook-request-id"
    payload_id_field = "request_id"
    type_header: str | None = None
    has_timestamp = True
    id_signed = True

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float,
        tolerance: int = 300,
        url: str | None = None,
    ) -> Verified:
        request_id = _required_id(headers, "x-fal-webhook-request-id")
        user_id = _required_id(headers, "x-fal-webhook-user-id")
        raw_ts = _header(headers, "x-fal-webhook-timestamp")
        _timestamp(raw_ts, now, tolerance)
        signature = _hex(_header(headers, "x-fal-webhook-signature"), 64)
        keys = _fal_keys(tuple(secrets))
        if not keys:
            raise SignatureError("no_secret")
        message = self.message(request_id, user_id, raw_ts, body)
        if not _ed25519_verify(keys, signature, message):
            raise SignatureError("no_match")
        return Verified(request_id)

    @staticmethod
    def message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
        """The signed message."""
        digest = hashlib.sha256(body).hexdigest()
        return "\n".join((request_id, user_id, timestamp, digest)).encode()

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        delivery_id: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        seed = _fal_private(secret)
        if seed is None:
            raise ValueError("fal signs with its private key: give a JWK holding 'd'")
        ts = str(int(now))
        request_id = delivery_id or _uuid_like(hashlib.sha256(body + ts.encode()).digest())
        user_id = "hookpress-local"
        signature = _ed25519_sign(seed, self.message(request_id, user_id, ts, body))
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": ts,
            "X-Fal-Webhook-Signature": signature.hex(),
        }

    def new_secret(self) -> KeyPair:
        """A local key pair: a JWKS with the public key, and the private JWK that signs."""
        seed, public = _ed25519_pair()
        kid = hashlib.sha256(public).hexdigest()[:16]
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public), "kid": kid}
        return KeyPair(
            json.dumps({"keys": [jwk]}, separators=(",", ":")),
            json.dumps({**jwk, "d": _b64url(seed)}, separators=(",", ":")),
        )

    @staticmethod
    def parse_key_set(document: str) -> list[dict[str, Any]]:
        """The Ed25519 public JWKs of a JWKS document (or of one JWK); others are skipped."""
        try:
            data = json.loads(document)
        except ValueError:
            return []
        candidates = data.get("keys") if isinstance(data, dict) and "keys" in data else [data]
        if not isinstance(candidates, list):
            return []
        return [
            k
            for k in candidates
            if isinstance(k, dict)
            and k.get("kty") == "OKP"
            and k.get("crv") == "Ed25519"
            and isinstance(k.get("x"), str)
            and _ed25519_public(_unb64url(k["x"]) or b"") is not None
        ]


def _uuid_like(raw: bytes) -> str:
    h = raw[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=64)
def _fal_keys(secrets: tuple[str, ...]) -> tuple[Ed25519PublicKey, ...]:
    keys: list[Ed25519PublicKey] = []
    for document in secrets:
        for jwk in Fal.parse_key_set(document):
            key = _ed25519_public(_unb64url(jwk["x"]) or b"")
            if key is not None:
                keys.append(key)
    return tuple(keys)


def _fal_private(secret: str) -> bytes | None:
    try:
        data = json.loads(secret)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str):
        return None
    seed = _unb64url(data["d"])
    return seed if seed is not None and len(seed) == 32 else None


#: Svix (Clerk, Resend): Standard Webhooks under ``svix-`` header names.
SVIX = StandardWebhooks("svix", "svix")
STRIPE = TimestampedHmac("stripe", "Stripe-Signature", ",", "t", "v1", ".", "whsec_")
ELEVENLABS = TimestampedHmac("elevenlabs", "ElevenLabs-Signature", ",", "t", "v0", ".", "wsec_")
PADDLE = TimestampedHmac("paddle", "Paddle-Signature", ";", "ts", "h1", ":", "pdl_ntfset_")

SCHEMES: Mapping[str, Scheme] = {
    s.name: s
    for s in (
        HmacTimestamp(),
        StandardWebhooks(),
        SVIX,
        STRIPE,
        GitHub(),
        Slack(),
        Shopify(),
        ELEVENLABS,
        PADDLE,
        Twilio(),
        Fal(),
    )
}
