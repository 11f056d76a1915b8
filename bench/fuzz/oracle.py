"""What the ingress must answer: the status table and an independent signature check.

The fuzzer's judge. :func:`prescribed` is what the stack decides before it
reads a signature: functions-framework's routes (Starlette, in its ASGI mode)
for the path and the method, then the status table of DESIGN.md for the
method, the source, the encoding and the size. :func:`genuine` answers whether
a request was signed by a holder of the secret, written from the providers'
documentation and not from ``hookpress.signatures``. :class:`Case` is one
request and what the fuzzer knows about it; the strategies build them, the
target sends them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
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
#: the ingress's own statuses (DESIGN.md's table but 503: the backends are healthy)
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

#: Who answered a request. ``INGRESS``: our code (``hookpress.ingress``), one JSON answer
#: and one log line. ``FRAMEWORK``: functions-framework's Starlette app before the function
#: is called (its routes, below). ``SERVER``: uvicorn, whose parser (httptools) refuses the
#: request head with its own 400 and never calls the app.
INGRESS, FRAMEWORK, SERVER = "ingress", "framework", "server"

#: functions-framework's routes in ASGI mode (``functions_framework/aio``), in order: the
#: function at "/" and "/{path:path}" for these methods, a 404 of its own for GET (and so
#: HEAD, which Starlette adds to a GET route) of /robots.txt and /favicon.ico. Starlette
#: compiles a route to ``^<literal>$`` (``{path:path}`` to ``.*``) and matches it with
#: ``re.match`` on the percent-decoded path: ``$`` also matches before a final newline.
FUNCTION_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
_ROUTES: tuple[tuple[re.Pattern[str], frozenset[str], bool], ...] = (
    (re.compile(r"^/$"), FUNCTION_METHODS, True),
    (re.compile(r"^/robots\.txt$"), frozenset({"GET", "HEAD"}), False),
    (re.compile(r"^/favicon\.ico$"), frozenset({"GET", "HEAD"}), False),
    (re.compile(r"^/.*$"), FUNCTION_METHODS, True),
)


class InvariantBroken(AssertionError):
    """A case broke one of the invariants; the message says which and how."""


@dataclass
class Case:
    """One request, and what the fuzzer knows about it."""

    kind: str
    method: str
    path: str  # the request target as sent: the path as is (no client normalises it), ?query
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None  # a Content-Length that differs from the body
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    pristine: bool = False  # genuinely signed JSON object, nothing broken: must be accepted
    #: the size of the pieces the server hands the app (``receive``) and, chunked, of the
    #: chunks; None: uvicorn's 64 KiB (it stops reading the socket past that much buffered)
    piece: int | None = None

    def describe(self) -> str:
        """A short, secret-free description for failure messages."""
        names = [n for n, _ in self.headers]
        return (
            f"{self.kind} {self.method!r} {self.path[:80]!r} headers={names} "
            f"body={len(self.body)}B declared={self.declared_length} chunked={self.chunked}"
            + (f" piece={self.piece}" if self.piece else "")
        )

    @property
    def cut_short(self) -> bool:
        """The client declared more than it sends, then gives up: the server sees it go."""
        return self.declared_length is not None and self.declared_length > len(self.body)


def header_bytes(value: str) -> bytes:
    """A header value as a client writes it: one byte a character where it can (HTTP's
    obs-text is bytes 0x80-0xFF), else UTF-8 (a hostile client writes any bytes it likes;
    the server hands them over as they came, and they are read one byte a character)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def field_value(value: str) -> str:
    """A header's value as the server hands it over: without the optional whitespace
    around it (RFC 9110, 5.5; llhttp drops the leading, uvicorn strips the trailing)."""
    return value.strip(" \t")


def seen_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers as the ingress sees them: lower-case names, values without the whitespace
    around them, repeats joined by ", "."""
    seen: dict[str, str] = {}
    for name, raw in headers:
        key, value = name.lower(), field_value(header_bytes(raw).decode("latin-1"))
        seen[key] = f"{seen[key]}, {value}" if key in seen else value
    return seen


def split_target(target: str) -> tuple[str, str]:
    """A request target's path as sent and its query (a fragment, which no client sends
    but a parser skips, dropped)."""
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def decoded_path(target: str) -> str:
    """``scope["path"]``: the target's path, percent-decoded (as uvicorn decodes it)."""
    return urllib.parse.unquote(split_target(target)[0])


def source_name(target: str) -> str:
    """The source a request target names, as the ingress reads it."""
    return decoded_path(target).strip("/")


@dataclass(frozen=True)
class Expected:
    """What must answer a case, with what status, and what to say if it does not."""

    status: int
    by: str  # INGRESS or FRAMEWORK
    why: str


def routed(method: str, path: str) -> Expected | None:
    """What functions-framework's Starlette app answers before the function, or None when it
    calls the function: Starlette's router over :data:`_ROUTES` (a route that matches the
    path but not the method is a 405 unless a later one matches both; none: the path with
    its trailing slashes toggled is tried, and a match there is a 307 redirect to it, else
    a 404)."""
    partial = False
    for pattern, methods, function in _ROUTES:
        if pattern.match(path):
            if method in methods:
                return None if function else Expected(404, FRAMEWORK, "robots/favicon not 404")
            partial = True
    if partial:
        return Expected(405, FRAMEWORK, "a method no route serves but not Starlette's 405")
    if path != "/":
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        if any(pattern.match(other) for pattern, _, _ in _ROUTES):
            return Expected(307, FRAMEWORK, "an unroutable path but not Starlette's redirect")
    return Expected(404, FRAMEWORK, "an unroutable path but not Starlette's 404")


def prescribed(case: Case, seen: Mapping[str, str], sources: Collection[str]) -> Expected | None:
    """What must answer before any signature is read, or ``None``: the signature and the
    body decide (an ingress status of the table).

    For a request the server's parser accepts (the target checks that first).
    """
    framework = routed(case.method, decoded_path(case.path))
    if framework is not None:
        return framework
    if case.method != "POST":
        return Expected(405, INGRESS, "not POST but not 405")
    if source_name(case.path) not in sources:
        return Expected(404, INGRESS, "unknown source but not 404")
    if seen.get("content-encoding", "").strip().lower() not in {"", "identity"}:
        return Expected(415, INGRESS, "a content encoding but not 415")
    size = len(case.body) if case.declared_length is None else case.declared_length
    if size > MAX_BODY or (case.chunked and len(case.body) > MAX_BODY):
        return Expected(413, INGRESS, "over the limit but not 413")
    if case.cut_short:
        return Expected(400, INGRESS, "a body cut short by the client's leaving but not 400")
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
