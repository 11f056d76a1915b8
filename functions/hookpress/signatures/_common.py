"""What every scheme shares: the result and error types, header and timestamp reading, HMACs.

:class:`HmacScheme` owns the one path most providers take — read the header,
parse it, check the timestamp against the window, compare the HMACs — so a
scheme of that kind only says where its parts are (:meth:`HmacScheme.read`)
and what it sends (:meth:`HmacScheme.headers`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets as _random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from hookpress.signatures._ids import valid_id

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = [
    "HmacScheme",
    "Incoming",
    "KeyPair",
    "Outgoing",
    "Scheme",
    "SignatureError",
    "Signed",
    "Verified",
    "valid_id",
]

_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


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


class Verified(msgspec.Struct, frozen=True):
    """What a successful verification tells the caller."""

    delivery_id: str | None  # the scheme's delivery-id header, if it has one
    body_format: str = "json"  # how to read the body: "json" or "form" (payloads.py)


class KeyPair(msgspec.Struct, frozen=True):
    """A new key: what the ingress holds (``verify``) and what a sender signs with (``sign``).

    For HMAC schemes both are the same secret.
    """

    verify: str
    sign: str


def header(headers: Mapping[str, str], name: str) -> str:
    """A required header, stripped; ``missing_header`` if absent or blank."""
    value = headers.get(name)
    if value is None or not value.strip():
        raise SignatureError("missing_header")
    return value.strip()


def check_timestamp(raw: str, now: float, tolerance: int | None) -> int:
    """The signed timestamp, refused outside ``now ± tolerance`` (no window when None)."""
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


def delivery_id(headers: Mapping[str, str], name: str) -> str | None:
    """An optional delivery-id header: None when absent, ``invalid_id`` when not an id."""
    value = headers.get(name)
    if value is None or value == "":
        return None
    if not valid_id(value):
        raise SignatureError("invalid_id")
    return value


def required_id(headers: Mapping[str, str], name: str) -> str:
    """A delivery-id header the scheme signs, so it must be there."""
    value = delivery_id(headers, name)
    if value is None:
        raise SignatureError("missing_header")
    return value


def from_b64(value: str, expected_len: int = 32) -> bytes:
    """A base64 signature of exactly ``expected_len`` bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed_signature") from None
    if len(raw) != expected_len:
        raise SignatureError("malformed_signature")
    return raw


def from_hex(value: str, expected_len: int = 32) -> bytes:
    """A hex signature of exactly ``expected_len`` bytes."""
    if len(value) != 2 * expected_len or not _HEX.match(value):
        raise SignatureError("malformed_signature")
    return bytes.fromhex(value)


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes, digest: str) -> tuple[_Hash, _Hash]:
    """HMAC's inner and outer hash states for ``key`` (RFC 2104), each already fed its
    padded key, to be copied for every message.

    ``hmac.digest`` looks the algorithm up again and sets the key up again on every
    call (OpenSSL 3's ``EVP_Q_mac``: a fetch of the MAC and the digest by name, and a
    new context). Measured at concurrency 1 under ``perf`` on the ingress as deployed:
    that was 65 µs of a request's CPU; a copy of a keyed state is a memcpy of it.
    The keys are the secrets :class:`~hookpress.backends.secrets.CachedSecrets` already
    holds (as :func:`utf8_keys` does, bounded the same way).
    """
    block = hashlib.new(digest).block_size
    if len(key) > block:
        key = hashlib.new(digest, key).digest()
    padded = key.ljust(block, b"\0")
    return hashlib.new(digest, padded.translate(_IPAD)), hashlib.new(
        digest, padded.translate(_OPAD)
    )


def mac(key: bytes, prefix: bytes, body: bytes, digest: str = "sha256") -> bytes:
    """HMAC of ``prefix + body`` (``hmac.digest`` of the two joined), without joining them."""
    inner_keyed, outer_keyed = _keyed(key, digest)
    inner = inner_keyed.copy()
    inner.update(prefix)
    inner.update(body)
    outer = outer_keyed.copy()
    outer.update(inner.digest())
    return outer.digest()


def match(candidates: Sequence[bytes], keys: Sequence[bytes], prefix: bytes, body: bytes) -> None:
    """Return if any candidate is the HMAC of ``prefix + body`` under any key; else raise."""
    if not keys:
        raise SignatureError("no_secret")
    for key in keys:
        expected = mac(key, prefix, body)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return
    raise SignatureError("no_match")


@functools.lru_cache(maxsize=64)
def utf8_keys(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """The HMAC keys of secrets used as their UTF-8 bytes (empty ones dropped)."""
    return tuple(s.encode("utf-8") for s in secrets if s)


def body_id(body: bytes, length: int = 32) -> str:
    """A stable stand-in delivery id for a signed test request."""
    return hashlib.sha256(body).hexdigest()[:length]


class Incoming(msgspec.Struct, frozen=True):
    """A request to verify: the exact body, lower-case headers, the source's active secrets."""

    body: bytes
    headers: Mapping[str, str]
    secrets: tuple[str, ...]
    now: float
    tolerance: int | None
    url: str | None  # the public URL the provider called, for URL-signing schemes


class Outgoing(msgspec.Struct, frozen=True):
    """What a provider would sign: the body, its key, the time, an optional delivery id and URL."""

    body: bytes
    secret: str
    now: float
    delivery_id: str | None
    url: str | None

    @property
    def timestamp(self) -> str:
        """The signing time as the providers send it: whole seconds."""
        return str(int(self.now))


class Scheme:
    """One signature scheme; a subclass implements :meth:`check` and :meth:`signed_headers`."""

    name: str
    #: the header carrying the provider's delivery id, if the scheme has one
    id_header: str | None = None
    #: the payload field holding the provider's event id (when no id header)
    payload_id_field = "id"
    #: the header naming the event's type, for schemes that keep it out of the body
    type_header: str | None = None
    #: whether the scheme signs a timestamp (else dedupe is the replay guard)
    has_timestamp = True
    #: whether the delivery-id header is covered by the signature
    id_signed = False

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
        return self.check(Incoming(body, headers, tuple(secrets), now, tolerance, url))

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
        return self.signed_headers(Outgoing(body, secret, now, delivery_id, url))

    def check(self, request: Incoming) -> Verified:
        """:meth:`verify`, on one value."""
        raise NotImplementedError

    def signed_headers(self, outgoing: Outgoing) -> dict[str, str]:
        """:meth:`sign`, on one value."""
        raise NotImplementedError

    def new_secret(self) -> KeyPair:
        """A fresh key in the form the scheme's providers hand out."""
        raise NotImplementedError


class Signed(msgspec.Struct, frozen=True):
    """What a scheme's signature headers say: the candidate MACs and the timestamp."""

    candidates: Sequence[bytes]
    timestamp: str | None = None  # raw; None for schemes that sign none


class HmacScheme(Scheme):
    """A scheme whose secret is one shared key and whose MAC covers ``prefix(ts) + body``.

    Subclasses say where the candidates and the timestamp are (:meth:`read`), what
    the signed prefix is (:meth:`prefix`) and what a provider sends
    (:meth:`headers`); reading order and failure reasons stay theirs. The
    delivery id is read here, from :attr:`Scheme.id_header`, after the signature
    headers and before the timestamp and the MAC.
    """

    #: what a new secret starts with, in the form the provider hands it out
    secret_prefix = ""

    def read(self, headers: Mapping[str, str]) -> Signed:
        """Parse the scheme's headers; SignatureError when they are missing or malformed."""
        raise NotImplementedError

    def prefix(self, timestamp: str | None) -> bytes:
        """What the MAC covers before the body."""
        return b""

    def headers(self, digest: bytes, timestamp: str, delivery: str) -> dict[str, str]:
        """The headers a provider sends with ``digest``."""
        raise NotImplementedError

    def check(self, request: Incoming) -> Verified:
        signed = self.read(request.headers)
        delivery = None if self.id_header is None else delivery_id(request.headers, self.id_header)
        if signed.timestamp is not None:
            check_timestamp(signed.timestamp, request.now, request.tolerance)
        keys = utf8_keys(request.secrets)
        match(signed.candidates, keys, self.prefix(signed.timestamp), request.body)
        return Verified(delivery)

    def signed_headers(self, outgoing: Outgoing) -> dict[str, str]:
        ts = outgoing.timestamp
        digest = mac(outgoing.secret.encode(), self.prefix(ts), outgoing.body)
        return self.headers(digest, ts, outgoing.delivery_id or body_id(outgoing.body))

    def new_secret(self) -> KeyPair:
        value = self.secret_prefix + _random.token_hex(16)
        return KeyPair(value, value)
