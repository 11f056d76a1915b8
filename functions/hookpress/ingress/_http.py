"""HTTP for the ingress: the status table of DESIGN.md, and nothing else.

Every answer is a small JSON body. Nothing a client sends can produce a 500:
a signature problem is one generic 401 (the reason goes to the log), a body
problem a 400, a backend problem a 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from flask import Response
from werkzeug.exceptions import ClientDisconnected

from hookpress.ingress._pipeline import Ingestor, Outcome, Result
from hookpress.logs import Logger, trace_field

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Request

__all__ = [
    "STATUS",
    "answer",
    "environ_headers",
    "handle",
    "log_result",
    "lower_headers",
    "read_bounded",
    "refusal",
    "respond",
]

STATUS: dict[Outcome, int] = {
    Outcome.ACCEPTED: 202,
    Outcome.DUPLICATE: 200,
    Outcome.CHALLENGE: 200,
    Outcome.MALFORMED: 400,
    Outcome.UNAUTHORIZED: 401,
    Outcome.UNKNOWN_SOURCE: 404,
    Outcome.METHOD_NOT_ALLOWED: 405,
    Outcome.TOO_LARGE: 413,
    Outcome.UNSUPPORTED_ENCODING: 415,
    Outcome.UNAVAILABLE: 503,
}

_ERROR_BODY: dict[Outcome, str] = {
    Outcome.MALFORMED: "malformed body",
    Outcome.UNAUTHORIZED: "invalid signature",
    Outcome.UNKNOWN_SOURCE: "unknown source",
    Outcome.METHOD_NOT_ALLOWED: "method not allowed",
    Outcome.TOO_LARGE: "body too large",
    Outcome.UNSUPPORTED_ENCODING: "unsupported content encoding",
    Outcome.UNAVAILABLE: "temporarily unavailable",
}

_CHUNK = 64 * 1024
_JSON = json.JSONEncoder(separators=(",", ":"))  # built once (json.dumps builds one a call)


def lower_headers(request: Request) -> dict[str, str]:
    """Headers with lower-case names; a repeated header's values joined by ", ".

    For any request whose ``headers`` iterate as name-value pairs (the benchmark's ASGI
    candidate); the functions-framework entry point reads the WSGI environ instead
    (:func:`environ_headers`, held to this by a property test)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


_NOT_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})  # as werkzeug: CGI's own
_CGI_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


def environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """:func:`lower_headers` of a WSGI request, read from its environ (PEP 3333) as
    werkzeug's ``EnvironHeaders`` reads it, without building each name title-cased first
    (12 µs a request at c = 1 by perf's reading). A WSGI server has already joined a
    repeated header's values into one environ entry."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            if key not in _NOT_HEADERS:
                headers[key[5:].replace("_", "-").lower()] = value
        elif key in _CGI_HEADERS and value:
            headers[key.replace("_", "-").lower()] = value
    return headers


def read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes.

    The declared Content-Length is only a hint for refusing early: the stream
    is read at most ``limit + 1`` bytes whatever it claims, so a lying or absent
    length (chunked transfer) cannot make us buffer more.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    stream = request.stream
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        return None
    return b"".join(chunks)


def answer(result: Result, retry_after_s: int) -> tuple[int, str, dict[str, str]]:
    """The status, JSON body and headers of the answer to ``result``, whatever the server."""
    status = STATUS[result.outcome]
    body: dict[str, Any]
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if result.outcome is Outcome.ACCEPTED:
        body = {"status": "accepted", "event_id": result.event_key}
    elif result.outcome is Outcome.DUPLICATE:
        body = {"status": "duplicate", "event_id": result.event_key}
    elif result.outcome is Outcome.CHALLENGE:
        body = {"challenge": result.challenge}
    else:
        body = {"status": "rejected", "error": _ERROR_BODY[result.outcome]}
        if result.outcome is Outcome.UNAVAILABLE:
            body["status"] = "unavailable"
            headers["Retry-After"] = str(retry_after_s)
        elif result.outcome is Outcome.METHOD_NOT_ALLOWED:
            headers["Allow"] = "POST"
    return status, _JSON.encode(body), headers


def respond(result: Result, retry_after_s: int, *, body_consumed: bool = True) -> Response:
    """The HTTP answer for ``result``.

    When the request body was not (fully) read, the answer is a streamed
    response with ``Connection: close``: functions-framework reads the whole
    remaining body into memory after every non-streamed response, which for a
    refused multi-gigabyte chunked upload is exactly what we must not do, and
    closing the connection spares the server from draining it.
    """
    status, payload, headers = answer(result, retry_after_s)
    if body_consumed:
        return Response(payload, status=status, mimetype="application/json", headers=headers)
    headers["Connection"] = "close"
    return Response(iter([payload]), status=status, mimetype="application/json", headers=headers)


def refusal(
    ingestor: Ingestor, method: str, name: str, headers: Mapping[str, str]
) -> Result | None:
    """The answer to a request refused before its body is read, or None to read it."""
    if method != "POST":
        return Result(Outcome.METHOD_NOT_ALLOWED)
    if name not in ingestor.settings.sources:
        return Result(Outcome.UNKNOWN_SOURCE)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in {"", "identity"}:
        # Refused before reading: a compressed body is a decompression bomb we need not risk.
        return Result(Outcome.UNSUPPORTED_ENCODING, reason="content_encoding")
    return None


def _route(
    ingestor: Ingestor, request: Request, headers: dict[str, str]
) -> tuple[Result, str, bool]:
    """The result, the source name as requested, and whether the body was read whole."""
    settings = ingestor.settings
    name = request.path.strip("/")
    refused = refusal(ingestor, request.method, name, headers)
    if refused is not None:
        return refused, name, False
    try:
        body = read_bounded(request, settings.max_body_bytes)
    except ClientDisconnected:
        return Result(Outcome.MALFORMED, reason="truncated_body"), name, False
    if body is None:
        return Result(Outcome.TOO_LARGE, reason="body_over_limit"), name, False
    query = request.query_string.decode("latin-1")
    return ingestor.ingest(settings.sources[name], headers, body, query), name, True


def log_result(
    ingestor: Ingestor,
    log: Logger,
    result: Result,
    name: str,
    headers: Mapping[str, str],
    started: float,
) -> None:
    """The request's one log line (``started``: its ``time.perf_counter()``)."""
    status = STATUS[result.outcome]
    log.log(
        "WARNING" if status == 503 else "INFO",
        f"ingress {result.outcome.value}",
        source=name[:64],
        event_key=result.event_key,
        outcome=result.outcome.value,
        reason=result.reason,
        http_status=status,
        # to 10 µs, truncated: round() of a float is a dtoa call, measurable per request
        duration_ms=int((time.perf_counter() - started) * 100_000) / 100,
        trace=trace_field(ingestor.settings.project, headers),
    )


def handle(ingestor: Ingestor, request: Request, log: Logger) -> Response:
    """Answer one request and write its one log line."""
    started = time.perf_counter()
    headers = environ_headers(request.environ)
    result, name, consumed = _route(ingestor, request, headers)
    log_result(ingestor, log, result, name, headers, started)
    return respond(result, ingestor.settings.retry_after_s, body_consumed=consumed)
