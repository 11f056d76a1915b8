"""Cloud Function (gen2) ``ingress``: the public edge. POST /{source} with a signed webhook.

Thin on purpose: everything lives in ``hookpress.ingress``. Nothing is read
or built at import time; the first request builds the runtime.
"""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from hookpress.ingress import handle_request


@functions_framework.http
def ingress(request: Request) -> Response:
    """Verify, store, dedupe, publish; answer per the ingress status table."""
    return handle_request(request)
