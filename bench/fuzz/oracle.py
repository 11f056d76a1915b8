"""What the ingress must answer: the status table and an independent signature check.

The fuzzer's judge. :func:`prescribed` is the status table of DESIGN.md for
what the edge decides before it reads a signature (method, source, encoding,
size); :func:`genuine` answers whether a request was signed by a holder of the
secret, written from the providers' documentation and not from
``hookpress.signatures``. :class:`Case` is one request and what the fuzzer
knows about it; the strategies build them, the target sends them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

#: the sources of the ingress half, one per scheme the oracle knows
SOURCES: tuple[str, ...] = (
    "hmac-timestamp",
    "standard-webhooks",
    "stripe",
    "github",
    "slack",
    "shopify",
)
MAX_BODY = 1024 * 1024
TOLERANCE = 300
KNOWN_STATUSES = frozenset({200, 202, 400, 401, 404, 405, 413, 415})
SIGNATURE_HEADERS: Mapping[str, tuple[str, ...]] = {
    "hmac-timestamp": ("x-provider-signature", "x-provider-timestamp"),
    "standard-webhooks": ("webhook-id", "webhook-timestamp", "webhook-signature"),
    "stripe": ("stripe-signature",),
    "github": ("x-hub-signature-256", "x-github-delivery", "x-github-event"),
    "slack": ("x-slack-signature", "x-slack-request-timestamp"),
    "shopify": ("x-shopify-hmac-sha256", "x-shopify-webhook-id", "x-shopify-topic"),
}
ALL_SIGNATURE_HEADERS = sorted({h for names in SIGNATURE_HEADERS.values() for h in names})


class InvariantBroken(AssertionError):
    """A case broke one of the invariants; the message says which and how."""


@dataclass
class Case:
    """One request, and what the fuzzer knows about it."""

    kind: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None  # a Content-Length that differs from the body
    chunked: bool = False  # no Content-Length at all: the server reads to the end
    pristine: bool = False  # genuinely signed JSON object, nothing broken: must be accepted

    def describe(self) -> str:
        """A short, secret-free description for failure messages."""
        names = [n for n, _ in self.headers]
        return (
            f"{self.kind} {self.method} {self.path[:80]!r} headers={names} "
            f"body={len(self.body)}B declared={self.declared_length} chunked={self.chunked}"
        )


def seen_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers as the ingress sees them: lower-case names, repeats joined by ", "."""
    seen: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        seen[key] = f"{seen[key]}, {value}" if key in seen else value
    return seen


def source_name(path: str) -> str:
    """The source a path names, as the ingress reads it."""
    return urllib.parse.unquote(path).strip("/")


def prescribed(
    case: Case, seen: Mapping[str, str], sources: Collection[str]
) -> tuple[int, str] | None:
    """The status the table prescribes before any signature is read, and the failure if not.

    ``None``: the request passed these rules; its signature and its body decide.
    """
    if case.method != "POST":
        return 405, "not POST but not 405"
    if source_name(case.path) not in sources:
        return 404, "unknown source but not 404"
    if seen.get("content-encoding", "").strip().lower() not in {"", "identity"}:
        return 415, "a content encoding but not 415"
    size = len(case.body) if case.declared_length is None else case.declared_length
    if size > MAX_BODY or (case.chunked and len(case.body) > MAX_BODY):
        return 413, "over the limit but not 413"
    return None


# -- the signature oracle ---------------------------------------------------------


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hexbytes(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        return None


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _fresh(ts: str, now: float) -> bool:
    ts = ts.strip()
    return ts.isascii() and ts.isdigit() and abs(int(ts) - now) <= TOLERANCE + 2


def genuine(
    scheme: str, headers: Mapping[str, str], body: bytes, keys: Sequence[str], now: float
) -> bool:
    """Whether the request carries a MAC that only a holder of one of ``keys`` could make.

    Written from the providers' documentation, independently of
    ``hookpress.signatures``, and lenient about encodings (case, padding,
    whitespace): it answers "did the sender know the secret, within the
    timestamp window", which is what acceptance must imply.
    """
    h = headers
    if scheme == "hmac-timestamp":
        ts = h.get("x-provider-timestamp", "").strip()
        sig = _b64(h.get("x-provider-signature", ""))
        if not _fresh(ts, now) or sig is None:
            return False
        return any(sig == _mac(k.encode(), ts.encode() + b"." + body) for k in keys)
    if scheme == "standard-webhooks":
        ts = h.get("webhook-timestamp", "").strip()
        msg_id = h.get("webhook-id", "")
        if not _fresh(ts, now):
            return False
        sigs = [
            _b64(v.split(",", 1)[1])
            for v in h.get("webhook-signature", "").split()
            if v.startswith("v1,")
        ]
        signed = f"{msg_id}.{ts}.".encode() + body
        for k in keys:
            raw = _b64(k.removeprefix("whsec_")) or b""
            if any(s == _mac(raw, signed) for s in sigs if s):
                return True
        return False
    if scheme == "stripe":
        items = [i.strip().partition("=") for i in h.get("stripe-signature", "").split(",")]
        stamps = [v for k, _, v in items if k == "t"]
        sigs = [_hexbytes(v) for k, _, v in items if k == "v1"]
        if len(stamps) != 1 or not _fresh(stamps[0], now):
            return False
        return any(
            s == _mac(k.encode(), stamps[0].encode() + b"." + body) for k in keys for s in sigs
        )
    if scheme == "github":
        prefix, _, value = h.get("x-hub-signature-256", "").strip().partition("=")
        sig = _hexbytes(value)
        return prefix == "sha256" and any(sig == _mac(k.encode(), body) for k in keys)
    if scheme == "slack":
        ts = h.get("x-slack-request-timestamp", "").strip()
        prefix, _, value = h.get("x-slack-signature", "").strip().partition("=")
        sig = _hexbytes(value)
        if prefix != "v0" or not _fresh(ts, now):
            return False
        return any(sig == _mac(k.encode(), f"v0:{ts}:".encode() + body) for k in keys)
    if scheme == "shopify":
        sig = _b64(h.get("x-shopify-hmac-sha256", ""))
        return sig is not None and any(sig == _mac(k.encode(), body) for k in keys)
    raise ValueError(scheme)
