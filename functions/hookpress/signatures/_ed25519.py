"""Ed25519 for the asymmetric schemes; ``cryptography`` is imported on first use.

HMAC-only instances never load it.
"""

from __future__ import annotations

import base64
import binascii
import secrets as _random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["b64url", "pair", "public_key", "public_of", "sign", "unb64url", "verify"]


def public_key(raw: bytes) -> Ed25519PublicKey | None:
    """The public key of 32 raw bytes, or None when they are not one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) != 32:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def verify(keys: Sequence[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    """Whether any of ``keys`` signed ``message``."""
    from cryptography.exceptions import InvalidSignature

    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def sign(seed: bytes, message: bytes) -> bytes:
    """The signature of ``message`` by the key of ``seed``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def public_of(seed: bytes) -> bytes:
    """The raw public key of a seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def pair() -> tuple[bytes, bytes]:
    """A new (seed, public key) pair."""
    seed = _random.token_bytes(32)
    return seed, public_of(seed)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWKs carry keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes | None:
    """Bytes of unpadded base64url, or None."""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
