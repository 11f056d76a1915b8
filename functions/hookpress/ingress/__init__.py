"""The ingress function's core: build the runtime once per instance, answer requests.

``functions/ingress/main.py`` is a thin shim over :func:`handle_request`, served in
functions-framework's ASGI mode: each request is read on the event loop and its
pipeline runs in a pool of ``THREADS`` threads (:mod:`hookpress.ingress._http`).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher
from hookpress.backends.secrets import CachedSecrets, build_secret_values
from hookpress.ingress._http import handle, respond
from hookpress.ingress._pipeline import Ingestor, Outcome, Result
from hookpress.instance import Instance, Lazy
from hookpress.logs import Logger
from hookpress.settings import IngressSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "Ingestor",
    "Outcome",
    "Result",
    "build_ingestor",
    "handle_request",
    "install",
    "pool_size",
]

_log = Logger("ingress")


def build_ingestor(env: Mapping[str, str], log: Logger = _log) -> Ingestor:
    """Read the settings and wire the adapters (clients are built on first use)."""
    settings = IngressSettings.from_env(env)
    timeout = settings.backend_timeout_s
    values = build_secret_values(settings.secrets, settings.project, env, timeout)
    return Ingestor(
        settings,
        secrets=CachedSecrets(
            values,
            ttl_s=settings.secrets.cache_ttl_s,
            min_refresh_interval_s=settings.secrets.min_refresh_interval_s,
        ),
        raw=RawStore(settings.project, settings.raw_bucket, timeout),
        records=EventRecords(
            settings.project, settings.firestore_database, settings.events_collection, timeout
        ),
        publisher=EventPublisher(settings.project, settings.events_topic, timeout),
        log=log,
    )


def _build() -> Ingestor:
    ingestor = build_ingestor(os.environ)
    ingestor.warm()  # the first event's connections and token, opened while it is read
    _log.info(
        "ingress ready",
        sources=len(ingestor.settings.sources),
        secrets_backend=ingestor.settings.secrets.backend,
    )
    return ingestor


_instance: Instance[Ingestor] = Instance(_build, _log)
install = _instance.install

#: Threads that run requests' pipelines at once: ``THREADS``, which the Pulumi program sets
#: to the instance's request concurrency (infra/env.py), as gunicorn's threads were in
#: functions-framework's default mode. Default 8, as the ASGI candidates measured it.
DEFAULT_THREADS = 8


def pool_size(env: Mapping[str, str]) -> int:
    """``THREADS`` if it is a positive whole number, else :data:`DEFAULT_THREADS`."""
    value = env.get("THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_THREADS


_pool: Lazy[ThreadPoolExecutor] = Lazy(
    lambda: ThreadPoolExecutor(pool_size(os.environ), thread_name_prefix="ingest")
)


async def handle_request(request: Request) -> Response:
    """The functions-framework entry point's whole body."""
    pool = _pool()
    # The first request builds the runtime off the loop: it may call Secret Manager.
    ingestor = (
        _instance.ready()
        if _instance.built
        else await asyncio.get_running_loop().run_in_executor(pool, _instance.ready)
    )
    if ingestor is None:
        # Misconfigured (the log said which variable): let providers retry once it is fixed.
        return respond(Result(Outcome.UNAVAILABLE, reason="settings"), 60, body_consumed=False)
    return await handle(ingestor, request, _log, pool)
