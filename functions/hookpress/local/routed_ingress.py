"""functions-framework entry module for a local stack with lanes: publish-time lane filters.

Pub/Sub applies a subscription's filter when a message is published: a bulk
message never enters the high lane's backlog, nor a queue in front of it. The
emulator ignores filters (``lanerouter.py``), and routing after publication
(a router subscription) puts every lane's messages into one queue again —
measured: with the router alone, high events sent during a 2,000-event bulk
flood waited behind the flood's messages in the router's backlog.

So with more than one lane the local stack runs the ingress from this module
(``--target ingress_routed``): on the first request it builds the real
ingestor from the environment, as the ingress does, and wraps its publisher
so that each message is published, at publish time, to the topic of the one
lane whose real filter (:func:`hookpress.lanes.lane_filter`, evaluated by
:func:`hookpress.local.lanerouter.matches`) the message's attributes match.
Everything else is the real ingress. Messages published to the ``events``
topic by anything else (the reconciler, ``hookpress replay``) still reach
their lane through the router. This lives under ``hookpress/local``, which no
deployed archive contains.

Variables (read on the first request): ``HOOKPRESS_LOCAL_LANE_TOPICS``, JSON
``{"lane": "topic id"}``, and ``HOOKPRESS_LOCAL_LANE_FILTERS``, JSON
``{"lane": "filter"}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import functions_framework.aio

from hookpress import ingress
from hookpress.backends.pubsub import EventPublisher, Message
from hookpress.ingress._server import harden_the_server
from hookpress.local.lanerouter import LaneRouter
from hookpress.local.wrapped_ingress import WrappedIngress

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["RoutingPublisher", "ingress_routed"]


class RoutingPublisher(EventPublisher):
    """Publishes each message to its lane's topic, chosen by the lanes' filters."""

    def __init__(self, router: LaneRouter, publishers: Mapping[str, EventPublisher]) -> None:
        self._router = router
        self._publishers = dict(publishers)

    def send(self, message: Message) -> str:
        """Publish to the matching lane's topic (what Pub/Sub's filters do at publish time)."""
        labels = message["attributes"]
        lane = self._router.route(labels)
        if lane is None:
            raise RuntimeError(f"no single lane matches {labels}: the lane filters are wrong")
        return self._publishers[lane].send(message)


def _routed(base: ingress.Ingestor) -> EventPublisher:
    topics: dict[str, str] = json.loads(os.environ["HOOKPRESS_LOCAL_LANE_TOPICS"])
    filters: dict[str, str] = json.loads(os.environ["HOOKPRESS_LOCAL_LANE_FILTERS"])
    settings = base.settings
    router = LaneRouter(settings.project, topics, filters)
    publishers = {
        lane: EventPublisher(settings.project, topic, settings.backend_timeout_s)
        for lane, topic in topics.items()
    }
    return RoutingPublisher(router, publishers)


# A lane variable missing or not JSON is a misconfiguration too.
harden_the_server()  # served as the ingress is
_ingress = WrappedIngress(_routed, (KeyError, ValueError))


@functions_framework.aio.http
async def ingress_routed(request: Request) -> Response:
    """The real ingress, after routing its publisher by the lane filters."""
    return await _ingress(request)
