"""The direct-calls floor served over HTTP: one more front of figure 1 (a yardstick).

A functions-framework handler, served by the same gunicorn threads as the
ingress, that makes exactly the floor's three calls for the request's body
(:func:`floor_event`: the GCS upload ∥ the record's create, then the
publish, with the objects the ingress would store) and answers 202. No
verification, parsing, body marker, claim, mark or log line.

What it costs over the bare 202 is what three backend round trips cost inside a
server on this machine (CPU that a waiting request spends on waking, besides
the calls' own work); what the ingress costs over it is the ingress's own work.
Neither is a target of issue 12: they say where its c = 1 figures go.
:func:`bench.run.direct_same_calls` makes the same calls, through
:func:`floor_event`, in the benchmark's own process.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import functions_framework
from flask import Request, Response

from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher
from hookpress.events import event_key, message_attributes
from hookpress.ingress._pipeline import stored_forms
from hookpress.settings import IngressSettings

if TYPE_CHECKING:
    from hookpress.settings import SourceConfig

__all__ = ["Floor", "served"]


class Floor:
    """The three calls of one new event, as the ingress makes them (same clients, same bytes)."""

    def __init__(self, settings: IngressSettings, timeout_s: float = 10.0) -> None:
        project = settings.project
        self.settings = settings
        self.raw = RawStore(project, settings.raw_bucket, timeout_s)
        self.records = EventRecords(
            project, settings.firestore_database, settings.events_collection, timeout_s
        )
        self.publisher = EventPublisher(project, settings.events_topic, timeout_s)

    def event(self, source: SourceConfig, pid: str, body: bytes) -> str:
        """Store ``body`` under a new key and publish it: the upload ∥ the create, then publish.

        The object, record and message are built as the ingress builds them
        (``stored_forms``, ``message_attributes``), with the ``event_type`` the
        benchmark's events carry; building them is part of the work.
        """
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
        attributes = message_attributes(record)
        stored = self.raw.start_put(name, body, metadata)
        self.records.create(key, record)
        stored()
        self.publisher.publish(key, source.name, attributes)
        return key


_floor: Floor | None = None
_ids = itertools.count()
_tag = secrets.token_hex(4)


@functions_framework.http
def served(request: Request) -> Response:
    """The floor's three calls for this body, then 202 with a body the size of the ingress's."""
    global _floor
    if _floor is None:  # the first request builds it, as the ingress's does
        _floor = Floor(IngressSettings.from_env(os.environ))
    source = _floor.settings.sources[request.path.strip("/")]
    key = _floor.event(source, f"served-{_tag}-{next(_ids)}", request.get_data())
    return Response(
        f'{{"status":"accepted","event_id":"{key}"}}', status=202, mimetype="application/json"
    )
