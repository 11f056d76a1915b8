from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hookpress.wire import Answer


class BackendError(Exception):
    """A backend call failed or timed out; the request can be retried later."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend}: {detail}")
        self.backend = backend
        self.detail = detail


def error_status(answer: Answer) -> str:
    """The canonical status name of a Google API error answer (``ALREADY_EXISTS``, …: the
    ``error.status`` of https://cloud.google.com/apis/design/errors#http_mapping), or
    ``HTTP_<n>``."""
    try:
        status = answer.json().get("error", {}).get("status")
    except (ValueError, AttributeError):
        status = None
    return status if isinstance(status, str) else f"HTTP_{answer.status}"
