"""Cloud Function (gen2) ``rotate``: Secret Manager rotation notifications (Pub/Sub push).

Thin on purpose: everything lives in ``hookpress.rotate``.
"""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from hookpress.rotate import handle_request


@functions_framework.http
def rotate(request: Request) -> Response:
    """Rotate the WordPress application password, or remind about a provider secret."""
    return handle_request(request)
