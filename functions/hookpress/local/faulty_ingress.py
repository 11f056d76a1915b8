"""functions-framework entry module for the chaos run: the real ingress, with publishes failing.

Run it like ``functions/ingress/main.py``, with ``--target ingress_with_faults``. On
the first request it builds the real ingestor from the environment, as the
ingress does, and wraps its Pub/Sub publisher so that a share of publishes
fail, then serves every request through the real ``handle_request``. Two
kinds of failure, half each:

- ``lost``: the publish raises before anything is sent (Pub/Sub refused it);
- ``unacknowledged``: the message is sent, then the call raises anyway (the
  ack never came back), so a retry publishes the key a second time and
  delivery has to deduplicate.

Either way the request is answered 503 and the record stays ``received``;
the provider's retry republishes it. This lives under ``hookpress/local``,
which no deployed archive contains: production code has no fault switch.

Variables (read on the first request):

``HOOKPRESS_CHAOS_PUBLISH_FAILURE_RATE``
    share of publishes that fail, 0 to 1 (default 0.1)
``HOOKPRESS_CHAOS_SEED``
    seed of the random choice, for a reproducible run (default: random)
"""

from __future__ import annotations

import os
import random
import threading
from typing import TYPE_CHECKING

import functions_framework.aio

from hookpress import ingress
from hookpress.backends import BackendError
from hookpress.backends.pubsub import EventPublisher, Message
from hookpress.ingress._server import harden_the_server
from hookpress.local.wrapped_ingress import WrappedIngress

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["FailingPublisher", "ingress_with_faults"]


class FailingPublisher(EventPublisher):
    """An :class:`EventPublisher` whose ``publish`` fails for a share of calls."""

    def __init__(self, inner: EventPublisher, rate: float, seed: int | None) -> None:
        # Not calling super().__init__: every call goes to ``inner``.
        self._inner = inner
        self._rate = rate
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self._guard = threading.Lock()
        self.failures: dict[str, int] = {"lost": 0, "unacknowledged": 0}

    def _draw(self) -> str | None:
        with self._guard:
            if self._random.random() >= self._rate:
                return None
            kind = "lost" if self._random.random() < 0.5 else "unacknowledged"
            self.failures[kind] += 1
            return kind

    def send(self, message: Message) -> str:
        """Publish through the real publisher, or fail as drawn."""
        kind = self._draw()
        if kind == "lost":
            raise BackendError("pubsub", "injected: publish refused")
        message_id = self._inner.send(message)
        if kind == "unacknowledged":
            raise BackendError("pubsub", "injected: ack lost")
        return message_id


def _failing(base: ingress.Ingestor) -> EventPublisher:
    rate = float(os.environ.get("HOOKPRESS_CHAOS_PUBLISH_FAILURE_RATE", "0.1"))
    seed_text = os.environ.get("HOOKPRESS_CHAOS_SEED")
    publisher = FailingPublisher(
        base.publisher, rate, int(seed_text) if seed_text is not None else None
    )
    base.log.warning(
        "CHAOS INGRESS: publishes fail on purpose (local chaos run only)",
        outcome="chaos",
        reason=f"rate={rate}",
    )
    return publisher


harden_the_server()  # served as the ingress is
_ingress = WrappedIngress(_failing)


@functions_framework.aio.http
async def ingress_with_faults(request: Request) -> Response:
    """The real ingress, after wrapping its publisher."""
    return await _ingress(request)
