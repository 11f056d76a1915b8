"""The direct-calls floor served over HTTP: one more front of figure 1 (a yardstick).

A functions-framework handler, served as the ingress is (ASGI mode: the body read
on the event loop, the calls made in a pool of ``THREADS`` threads), that makes
exactly the floor's three calls for the request's body (:meth:`Floor.event`: the
GCS upload ∥ the record's create, then the publish, with the objects the ingress
would store) and answers 202. No verification, parsing, body marker, claim, mark
or log line.

What it costs over the bare 202 is what three backend round trips cost inside a
server on this machine (CPU that a waiting request spends on waking, besides
the calls' own work); what the ingress costs over it is the ingress's own work.
Neither is a target of issue 12: they say where its c = 1 figures go.
:func:`bench.run.direct_same_calls` makes the same calls, through
:meth:`Floor.event`, in the benchmark's own process.

``served_overlapped`` is a second yardstick (``--yardsticks``): the same three
calls with the publish sent alongside the two writes instead of after them.
That is *not* DESIGN.md's order (a message would be out before the event is
durable; the ingress never does it): it measures what that order costs in
latency, which no handler keeping it can win back (served in the default mode, Flask
under gunicorn's threads). ``bench/asgi_ingress.py``'s ``served_calls`` is the third:
DESIGN's order on an asyncio wire, no thread pool.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import functions_framework
import functions_framework.aio
import starlette.requests
import starlette.responses
from flask import Request, Response

from hookpress.backends._auth import service_endpoint
from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher, event_message
from hookpress.events import event_key, message_attributes
from hookpress.ingress import pool_size
from hookpress.ingress._pipeline import stored_forms
from hookpress.settings import IngressSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hookpress.backends._rest import Endpoint
    from hookpress.settings import SourceConfig

__all__ = ["Floor", "served", "served_overlapped"]


class Floor:
    """The three calls of one new event, as the ingress makes them (same clients, same bytes)."""

    def __init__(
        self,
        settings: IngressSettings,
        timeout_s: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: where the emulators are, if not this process's environment."""
        project = settings.project

        def endpoint(service: str) -> Endpoint | None:
            return None if env is None else service_endpoint(service, timeout_s, env)

        self.settings = settings
        self.raw = RawStore(project, settings.raw_bucket, timeout_s, endpoint=endpoint("gcs"))
        self.records = EventRecords(
            project,
            settings.firestore_database,
            settings.events_collection,
            timeout_s,
            endpoint=endpoint("firestore"),
        )
        self.publisher = EventPublisher(
            project, settings.events_topic, timeout_s, endpoint=endpoint("pubsub")
        )

    def forms(
        self, source: SourceConfig, pid: str, body: bytes
    ) -> tuple[str, str, dict[str, Any], dict[str, str], dict[str, str]]:
        """The key, object name, record, object metadata and message attributes of a new event,
        built as the ingress builds them (``stored_forms``, ``message_attributes``), with the
        ``event_type`` the benchmark's events carry; building them is part of the work."""
        key = event_key(source.name, pid)
        received_at = datetime.fromtimestamp(time.time(), UTC)
        name, record, metadata = stored_forms(
            source,
            pid,
            key,
            body,
            received_at,
            self.raw.uri,
            ttl_days=self.settings.event_ttl_days,
            event_type="bench.event",
        )
        record["publish_claimed_at"] = received_at
        return key, name, record, metadata, message_attributes(record)

    def event(self, source: SourceConfig, pid: str, body: bytes) -> str:
        """Store ``body`` under a new key and publish it: the upload ∥ the create, then publish."""
        key, name, record, metadata, attributes = self.forms(source, pid, body)
        stored = self.raw.start_put(name, body, metadata)
        self.records.create(key, record)
        stored()
        self.publisher.publish(key, source.name, attributes)
        return key

    def event_overlapped(self, source: SourceConfig, pid: str, body: bytes) -> str:
        """The same three calls, the publish on the wire with the two writes (not DESIGN's
        order: see the module's docstring). One publish per request, written at once as
        the upload is, so no thread and no grouping stands between the three."""
        key, name, record, metadata, attributes = self.forms(source, pid, body)
        stored = self.raw.start_put(name, body, metadata)
        message = event_message(key, source.name, attributes)
        published = self.publisher._rest().send(  # a yardstick, not the adapter
            "POST",
            f"/v1/{self.publisher.topic_path}:publish",
            json.dumps({"messages": [message]}, separators=(",", ":")).encode(),
            {"Content-Type": "application/json"},
        )
        self.records.create(key, record)
        stored()
        if published.result().status != 200:
            raise RuntimeError("publish refused")
        return key


_floor: Floor | None = None
_ids = itertools.count()
_tag = secrets.token_hex(4)


def _floor_now() -> Floor:
    global _floor
    if _floor is None:  # the first request builds it, as the ingress's does
        _floor = Floor(IngressSettings.from_env(os.environ))
    return _floor


def _accepted(key: str) -> Response:
    """202 with a body the size of the ingress's."""
    return Response(
        f'{{"status":"accepted","event_id":"{key}"}}', status=202, mimetype="application/json"
    )


_pool = ThreadPoolExecutor(pool_size(os.environ), thread_name_prefix="served")


@functions_framework.aio.http  # type: ignore[misc]
async def served(request: starlette.requests.Request) -> starlette.responses.Response:
    """The floor's three calls for this body, in DESIGN's order, in a pool thread, then 202."""
    loop = asyncio.get_running_loop()
    floor = _floor if _floor is not None else await loop.run_in_executor(_pool, _floor_now)
    source = floor.settings.sources[request.url.path.strip("/")]
    body = await request.body()
    pid = f"served-{_tag}-{next(_ids)}"
    key = await loop.run_in_executor(_pool, floor.event, source, pid, body)
    return starlette.responses.Response(
        f'{{"status":"accepted","event_id":"{key}"}}', 202, media_type="application/json"
    )


@functions_framework.http
def served_overlapped(request: Request) -> Response:
    """The three calls with the publish alongside the writes (a yardstick only), then 202."""
    floor = _floor_now()
    source = floor.settings.sources[request.path.strip("/")]
    pid = f"overlapped-{_tag}-{next(_ids)}"
    return _accepted(floor.event_overlapped(source, pid, request.get_data()))
