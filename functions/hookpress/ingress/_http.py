"""HTTP for the ingress: the status table of DESIGN.md, and nothing else.

The ingress is served in functions-framework's ASGI mode (Starlette under
uvicorn's gunicorn worker; README, "Decisions and departures"): a request is
read on the event loop and its pipeline (``Ingestor.ingest``, blocking calls to
GCS, Firestore and Pub/Sub) runs in a pool thread.

Every answer is a small JSON body. Nothing a client sends can produce a 500:
a signature problem is one generic 401 (the reason goes to the log), a body
problem a 400, a backend problem a 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from hookpress.ingress._pipeline import Ingestor, Outcome, Result
from hookpress.logs import Logger, trace_field

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from concurrent.futures import Executor

    from starlette.requests import Request

__all__ = [
    "STATUS",
    "answer",
    "handle",
    "log_result",
    "read_bounded",
    "refusal",
    "respond",
    "scope_headers",
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
    Outcome.HEADERS_TOO_LARGE: 431,
    Outcome.UNAVAILABLE: 503,
}

_ERROR_BODY: dict[Outcome, str] = {
    Outcome.MALFORMED: "malformed body",
    Outcome.UNAUTHORIZED: "invalid signature",
    Outcome.UNKNOWN_SOURCE: "unknown source",
    Outcome.METHOD_NOT_ALLOWED: "method not allowed",
    Outcome.TOO_LARGE: "body too large",
    Outcome.UNSUPPORTED_ENCODING: "unsupported content encoding",
    Outcome.HEADERS_TOO_LARGE: "headers too large",
    Outcome.UNAVAILABLE: "temporarily unavailable",
}

_JSON = json.JSONEncoder(separators=(",", ":"))  # built once (json.dumps builds one a call)


def scope_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI request's headers (``scope["headers"]``) with lower-case names, a repeated
    header's values joined by ", " (RFC 9110, 5.3), as Starlette's ``request.headers`` reads
    them (held to it by a property test), without building that object first."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def read_bounded(request: Request, headers: Mapping[str, str], limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes.

    The declared Content-Length is only a hint for refusing early: the stream is
    read a chunk at a time and given up once past ``limit``, so a lying or absent
    length (chunked transfer) cannot make us hold more than the limit and one chunk
    (uvicorn hands over what one read of the socket gave it, up to 256 KiB on uvloop,
    and stops reading past 64 KiB buffered until the app asks for more).
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
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

    When the request body was not (fully) read, the answer carries
    ``Connection: close``: uvicorn then closes the connection once the answer is
    sent, without reading the rest of a refused upload (a multi-gigabyte chunked
    body is exactly what we must not read), where keeping it open would make it
    read the rest to find the next request.
    """
    status, payload, headers = answer(result, retry_after_s)
    if not body_consumed:
        headers["Connection"] = "close"
    return Response(payload, status, headers, "application/json")


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


async def _route(
    ingestor: Ingestor, request: Request, headers: dict[str, str], pool: Executor
) -> tuple[Result, str, bool]:
    """The result, the source name as requested, and whether the body was read whole."""
    settings = ingestor.settings
    scope = request.scope
    name = scope["path"].strip("/")
    refused = refusal(ingestor, scope["method"], name, headers)
    if refused is not None:
        return refused, name, False
    try:
        body = await read_bounded(request, headers, settings.max_body_bytes)
    except ClientDisconnect:
        return Result(Outcome.MALFORMED, reason="truncated_body"), name, False
    if body is None:
        return Result(Outcome.TOO_LARGE, reason="body_over_limit"), name, False
    query = scope["query_string"].decode("latin-1")
    # The pipeline blocks on its backends: a pool thread runs it while the loop serves others.
    result = await asyncio.get_running_loop().run_in_executor(
        pool, ingestor.ingest, settings.sources[name], headers, body, query
    )
    return result, name, True


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


async def handle(ingestor: Ingestor, request: Request, log: Logger, pool: Executor) -> Response:
    """Answer one request (its pipeline run in ``pool``) and write its one log line."""
    started = time.perf_counter()
    headers = scope_headers(request.scope["headers"])
    result, name, consumed = await _route(ingestor, request, headers, pool)
    log_result(ingestor, log, result, name, headers, started)
    return respond(result, ingestor.settings.retry_after_s, body_consumed=consumed)
