"""Cloud Function (gen2) ``deliver``: private, Pub/Sub push-subscribed.

POST / delivers one event into WordPress; POST /dead marks a dead-lettered
event. Thin on purpose: everything lives in ``hookpress.deliver``.
"""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from hookpress.deliver import handle_request


@functions_framework.http
def deliver(request: Request) -> Response:
    """Authenticate the push, deliver, answer 204 (ack) or non-2xx (retry)."""
    return handle_request(request)
