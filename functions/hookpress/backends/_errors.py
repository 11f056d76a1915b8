from __future__ import annotations


class BackendError(Exception):
    """A backend call failed or timed out; the request can be retried later."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend}: {detail}")
        self.backend = backend
        self.detail = detail
