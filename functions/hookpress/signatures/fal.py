"""fal.ai: Ed25519 over the request id, user id, timestamp and the body's SHA-256."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Any

from hookpress.signatures import _ed25519
from hookpress.signatures._common import (
    Incoming,
    KeyPair,
    Outgoing,
    Scheme,
    SignatureError,
    Verified,
    check_timestamp,
    from_hex,
    header,
    required_id,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["Fal"]


class Fal(Scheme):
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

    def check(self, request: Incoming) -> Verified:
        headers = request.headers
        request_id = required_id(headers, "x-fal-webhook-request-id")
        user_id = required_id(headers, "x-fal-webhook-user-id")
        raw_ts = header(headers, "x-fal-webhook-timestamp")
        check_timestamp(raw_ts, request.now, request.tolerance)
        signature = from_hex(header(headers, "x-fal-webhook-signature"), 64)
        keys = _fal_keys(request.secrets)
        if not keys:
            raise SignatureError("no_secret")
        message = self.message(request_id, user_id, raw_ts, request.body)
        if not _ed25519.verify(keys, signature, message):
            raise SignatureError("no_match")
        return Verified(request_id)

    @staticmethod
    def message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
        """The signed message."""
        digest = hashlib.sha256(body).hexdigest()
        return "\n".join((request_id, user_id, timestamp, digest)).encode()

    def signed_headers(self, outgoing: Outgoing) -> dict[str, str]:
        body = outgoing.body
        seed = _fal_private(outgoing.secret)
        if seed is None:
            raise ValueError("fal signs with its private key: give a JWK holding 'd'")
        ts = outgoing.timestamp
        request_id = outgoing.delivery_id or _uuid_like(hashlib.sha256(body + ts.encode()).digest())
        user_id = "hookpress-local"
        signature = _ed25519.sign(seed, self.message(request_id, user_id, ts, body))
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": ts,
            "X-Fal-Webhook-Signature": signature.hex(),
        }

    def new_secret(self) -> KeyPair:
        """A local key pair: a JWKS with the public key, and the private JWK that signs."""
        seed, public = _ed25519.pair()
        kid = hashlib.sha256(public).hexdigest()[:16]
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _ed25519.b64url(public), "kid": kid}
        return KeyPair(
            json.dumps({"keys": [jwk]}, separators=(",", ":")),
            json.dumps({**jwk, "d": _ed25519.b64url(seed)}, separators=(",", ":")),
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
            and _ed25519.public_key(_ed25519.unb64url(k["x"]) or b"") is not None
        ]


def _uuid_like(raw: bytes) -> str:
    h = raw[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=64)
def _fal_keys(secrets: tuple[str, ...]) -> tuple[Ed25519PublicKey, ...]:
    keys: list[Ed25519PublicKey] = []
    for document in secrets:
        for jwk in Fal.parse_key_set(document):
            key = _ed25519.public_key(_ed25519.unb64url(jwk["x"]) or b"")
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
    seed = _ed25519.unb64url(data["d"])
    return seed if seed is not None and len(seed) == 32 else None
