"""Twilio: HMAC of the URL Twilio called and the sorted form parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from hookpress.payloads import MalformedBody, form_pairs
from hookpress.signatures._common import (
    HmacScheme,
    Incoming,
    Outgoing,
    SignatureError,
    Verified,
    body_id,
    from_b64,
    header,
    mac,
    utf8_keys,
)

__all__ = ["Twilio"]


class Twilio(HmacScheme):
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

    def check(self, request: Incoming) -> Verified:
        body, headers, url = request.body, request.headers, request.url
        if not url:
            raise SignatureError("no_url")
        digest, size = self._algorithm(headers)
        signature = from_b64(header(headers, "x-twilio-signature"), size)
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
        keys = utf8_keys(request.secrets)
        if not keys:
            raise SignatureError("no_secret")
        for candidate_url in self._urls(url):
            signed = self.signed_string(candidate_url, pairs).encode("utf-8")
            for key in keys:
                if hmac.compare_digest(mac(key, b"", signed, digest), signature):
                    return Verified(None, body_format)
        raise SignatureError("no_match")

    def signed_headers(self, outgoing: Outgoing) -> dict[str, str]:
        body, url = outgoing.body, outgoing.url
        if not url:
            raise ValueError("Twilio signs the URL it calls: give the source's public URL")
        pairs = [] if self._body_hash(url) is not None else form_pairs(body)
        signed = self.signed_string(url, pairs).encode("utf-8")
        return {
            "X-Twilio-Signature": base64.b64encode(
                hmac.digest(outgoing.secret.encode(), signed, "sha1")
            ).decode(),
            "I-Twilio-Idempotency-Token": outgoing.delivery_id or body_id(body, 36),
        }
