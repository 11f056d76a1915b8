"""A candidate of issue 12, measured, not what the ingress runs: its pipeline in ASGI mode.

The smallest move to functions-framework's ASGI mode (Starlette under uvicorn's
gunicorn worker; a function decorated ``functions_framework.aio.http`` is served
that way): keep ``hookpress.ingress``'s synchronous pipeline as it is, every
rule and failure path of it, and change only the server in front. Each request
is read on the event loop, its ``Ingestor.ingest`` runs in a thread pool of
``THREADS`` threads (what gunicorn's ``--threads`` is in Flask mode), and the
answer and the log line are the ingress's own (:mod:`hookpress.ingress._http`:
``refusal``, ``answer``, ``log_result``).

``bench/asgi_ingress.py`` is the other candidate: the accepted path rewritten
for the event loop, on an asyncio wire. This one keeps our wire and grouping
and adds a hand-off per request (the loop to a pool thread and back) where
Flask mode's gunicorn has one too (its loop to a pool thread). What it tells is
what the server mode alone is worth to the ingress as it is.
``nox -s bench -- --only ingress --asgi-pipeline`` serves it beside the ingress,
taking turns with the other fronts, on events of its own.

Which HTTP parser and event loop uvicorn runs under it is measured too (see
``_server`` below): ``--asgi-pipeline`` serves it twice, on the pure-Python pair
(h11, asyncio) and on the C pair (httptools, uvloop).

Not a drop-in: the ingress's HTTP tests drive Flask's test client, and the
body rules that lean on werkzeug and gunicorn (the bounded read of a chunked
upload, ``Connection: close`` on a refusal before the body) would have to be
proved again on uvicorn.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import functions_framework.aio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hookpress.ingress import _instance, _log
from hookpress.ingress._http import answer, log_result, lower_headers, refusal
from hookpress.ingress._pipeline import Outcome, Result

_pool = ThreadPoolExecutor(int(os.environ.get("THREADS", "8")), thread_name_prefix="ingest")

# The server's HTTP parser and event loop. uvicorn's worker asks for "auto": httptools (C)
# and uvloop where they are installed (the bench env pins both), else h11 (pure Python) and
# asyncio's loop. HOOKPRESS_BENCH_ASGI_SERVER=h11 (or =httptools) picks that parser on
# asyncio's loop whatever is installed, so the same run can serve both. The worker reads this
# when gunicorn builds it, after functions-framework has imported this module.
_server = os.environ.get("HOOKPRESS_BENCH_ASGI_SERVER", "")
if _server in {"h11", "httptools"}:
    import uvicorn_worker

    uvicorn_worker.UvicornWorker.CONFIG_KWARGS = {"loop": "asyncio", "http": _server}


async def _bounded(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is known to exceed ``limit`` bytes (the ingress's rule)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
    return b"".join(chunks)


@functions_framework.aio.http  # type: ignore[misc]
async def ingress(request: Request) -> Response:
    """``hookpress.ingress.handle`` on the event loop, the pipeline in a pool thread."""
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    # the first request builds the runtime off the loop (it may call Secret Manager)
    ingestor = (
        _instance.ready() if _instance.built else await loop.run_in_executor(_pool, _instance.ready)
    )
    if ingestor is None:
        status, payload, headers = answer(Result(Outcome.UNAVAILABLE, reason="settings"), 60)
        return Response(payload, status, headers, "application/json")
    headers = lower_headers(request)  # Starlette's headers iterate as Flask's do
    name = request.url.path.strip("/")
    settings = ingestor.settings
    result = refusal(ingestor, request.method, name, headers)
    consumed = False
    if result is None:
        try:
            body = await _bounded(request, settings.max_body_bytes)
        except ClientDisconnect:
            result = Result(Outcome.MALFORMED, reason="truncated_body")
        else:
            if body is None:
                result = Result(Outcome.TOO_LARGE, reason="body_over_limit")
            else:
                query = request.scope["query_string"].decode("latin-1")
                source = settings.sources[name]
                result = await loop.run_in_executor(
                    _pool, ingestor.ingest, source, headers, body, query
                )
                consumed = True
    log_result(ingestor, _log, result, name, headers, started)
    status, payload, extra = answer(result, settings.retry_after_s)
    if not consumed:
        extra["Connection"] = "close"
    return Response(payload, status, extra, "application/json")
