"""The bare handler in functions-framework's ASGI mode (``functions_framework.aio``).

A candidate the benchmark measures, not what the ingress runs: the same 202
as ``bare_function.accepted``, served by Starlette under uvicorn's gunicorn
worker (``FUNCTION_USE_ASGI=1``) instead of Flask under gunicorn threads.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

_BODY = (
    '{"status":"accepted","event_id":'
    '"0000000000000000000000000000000000000000000000000000000000000000"}'
)


@functions_framework.aio.http  # type: ignore[misc]
async def accepted(request: Request) -> Response:
    """Read the body, answer 202."""
    await request.body()
    return Response(_BODY, status_code=202, media_type="application/json")
