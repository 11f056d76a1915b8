"""Cloud Function (gen2) ``reconcile``: the sweep Cloud Scheduler calls every few minutes.

Thin on purpose: everything lives in ``hookpress.reconcile``.
"""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from hookpress.reconcile import handle_request


@functions_framework.http
def reconcile(request: Request) -> Response:
    """Publish records stuck in ``received``; report ``published`` ones gone stale."""
    return handle_request(request)
