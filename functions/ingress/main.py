"""Cloud Function (gen2) ``ingress``: the public edge. POST /{source} with a signed webhook.

Thin on purpose: everything lives in ``hookpress.ingress``. Nothing is read
or built at import time; the first request builds the runtime.

``functions_framework.aio.http`` makes functions-framework serve this function
in its ASGI mode (Starlette under uvicorn's gunicorn worker, on uvloop and
httptools, both in requirements.txt): README, "Decisions and departures".
``harden_the_server`` has that server refuse a request head over 64 KiB and close
a connection whose body is still arriving once it is answered
(``hookpress/ingress/_server.py``), set before functions-framework starts it.
Its modules load with Python's collector held (``hookpress/startup.py``).
"""

from __future__ import annotations

from hookpress.startup import collector_held

# Everything imported here lives as long as the instance: loaded with the collector held,
# then frozen out of its later scans (hookpress/startup.py).
with collector_held():
    import functions_framework.aio
    from starlette.requests import Request
    from starlette.responses import Response

    from hookpress.ingress import handle_request
    from hookpress.ingress._server import harden_the_server

    harden_the_server()


@functions_framework.aio.http
async def ingress(request: Request) -> Response:
    """Verify, store, dedupe, publish; answer per the ingress status table."""
    return await handle_request(request)
