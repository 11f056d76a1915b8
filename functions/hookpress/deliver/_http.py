"""HTTP for the deliver function: a Pub/Sub push endpoint.

``POST /`` delivers; ``POST /dead`` is the dead-letter topic's push
subscription, which marks the event ``dead``. 2xx (204) acknowledges the
message; any other status makes Pub/Sub redeliver it with backoff. (The
Pub/Sub emulator counts a 202 as a failure, so success is always 204.)
"""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING

from flask import Response

from hookpress.deliver._envelope import MalformedEnvelope, parse_envelope
from hookpress.deliver._pipeline import Deliverer, Outcome
from hookpress.logs import Logger, trace_field
from hookpress.pushauth import OidcVerifier, PushAuthError

if TYPE_CHECKING:
    from flask import Request

__all__ = ["handle"]

MAX_ENVELOPE_BYTES = 1024 * 1024
_ALERT = {Outcome.FAILED, Outcome.DEAD}
_TRACE_HEADERS = ("x-cloud-trace-context", "traceparent")  # what trace_field reads


def _answer(status: int, text: str = "") -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _input(request: Request) -> IO[bytes]:
    """The body stream: the server's own when it ends it at the body (gunicorn does), else
    Flask's guarded one (which reads nothing without a Content-Length)."""
    environ = request.environ
    if environ.get("wsgi.input_terminated"):
        stream: IO[bytes] = environ["wsgi.input"]
        return stream
    return request.stream


def handle(
    deliverer: Deliverer, verifier: OidcVerifier | None, request: Request, log: Logger
) -> Response:
    """Answer one push request and write its log line."""
    started = time.perf_counter()
    headers = request.headers  # case-insensitive lookups in the WSGI environ: no copy of all
    trace = trace_field(
        deliverer.settings.project,
        {name: value for name in _TRACE_HEADERS if (value := headers.get(name)) is not None},
    )
    if request.method != "POST":
        return _answer(405)
    if verifier is not None:
        try:
            verifier.verify(headers.get("Authorization"))
        except PushAuthError as exc:
            log.warning("push refused", outcome="unauthenticated", reason=exc.reason, trace=trace)
            return _answer(exc.status)
    if (request.content_length or 0) > MAX_ENVELOPE_BYTES:
        return _answer(413)
    body = _input(request).read(MAX_ENVELOPE_BYTES + 1)
    try:
        if len(body) > MAX_ENVELOPE_BYTES:
            raise MalformedEnvelope("too_large")
        message = parse_envelope(body)
    except MalformedEnvelope as exc:
        log.warning("push refused", outcome="malformed_envelope", reason=str(exc), trace=trace)
        return _answer(400, "malformed push envelope")

    dead_letter = request.path.rstrip("/").endswith("/dead")
    result = deliverer.deliver(message, dead_letter=dead_letter)
    status = 204 if result.outcome.ack else 503
    severity = "ERROR" if result.outcome in _ALERT else "INFO" if status == 204 else "WARNING"
    log.log(
        severity,
        f"deliver {result.outcome.value}",
        event_key=message.event_key,
        source=message.attributes.get("source"),
        outcome=result.outcome.value,
        reason=result.reason,
        downstream_status=result.downstream_status,
        wp_post_id=result.wp_post_id,
        wordpress_ms=result.wordpress_ms,
        delivery_attempt=message.delivery_attempt,
        http_status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        trace=trace,
    )
    return _answer(status)
