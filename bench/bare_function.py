"""The floor functions-framework handlers the benchmark compares the ingress with.

``accepted``: reads the body and answers 202 with a JSON body the size of the
ingress's, and nothing else. ``hello``: the bare functions-framework hello,
for cold starts.
"""

from __future__ import annotations

import functions_framework
from flask import Request, Response


@functions_framework.http
def accepted(request: Request) -> Response:
    """Read the body, answer 202."""
    request.get_data()
    return Response(
        '{"status":"accepted","event_id":"0000000000000000000000000000000000000000000000000000000000000000"}',
        status=202,
        mimetype="application/json",
    )


@functions_framework.http
def hello(request: Request) -> str:
    """Hello."""
    return "hello"
