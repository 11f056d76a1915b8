"""The real ingress with its Pub/Sub publisher replaced: the chaos run's and the lanes'.

``faulty_ingress.py`` (publishes that fail) and ``routed_ingress.py``
(publish-time lane filters) are functions-framework entry modules that serve
the real ``hookpress.ingress.handle_request``; they differ only in the
publisher they put in front of Pub/Sub. :class:`WrappedIngress` is the rest:
on the first request it builds the real ingestor from the environment, as the
ingress does, swaps in the wrapped publisher and installs the result. A
misconfigured environment installs nothing; the real entry point then answers
503 and logs which variable is wrong. This lives under ``hookpress/local``,
which no deployed archive contains.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from hookpress import ingress
from hookpress.settings import SettingsError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from hookpress.backends.pubsub import EventPublisher

__all__ = ["WrappedIngress"]


class WrappedIngress:
    """The real ingress, its publisher replaced by ``wrap(the real ingestor)``."""

    def __init__(
        self,
        wrap: Callable[[ingress.Ingestor], EventPublisher],
        misconfigured: tuple[type[Exception], ...] = (),
    ) -> None:
        # ``misconfigured``: what ``wrap`` raises for a bad variable of its own.
        self._wrap = wrap
        self._misconfigured: tuple[type[Exception], ...] = (SettingsError, *misconfigured)
        self._lock = threading.Lock()
        self._installed = False

    def _install(self) -> None:
        with self._lock:
            if self._installed:
                return
            base = ingress.build_ingestor(os.environ)
            ingress.install(
                ingress.Ingestor(
                    base.settings,
                    secrets=base.secrets,
                    raw=base.raw,
                    records=base.records,
                    publisher=self._wrap(base),
                    log=base.log,
                )
            )
            self._installed = True

    def _install_quietly(self) -> None:
        with contextlib.suppress(*self._misconfigured):
            self._install()

    async def __call__(self, request: Request) -> Response:
        """Install on the first request (off the event loop: it reads the secrets), then
        serve it through the real entry point."""
        if not self._installed:
            await asyncio.to_thread(self._install_quietly)
        return await ingress.handle_request(request)
