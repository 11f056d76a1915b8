"""The deliver function's core: build the runtime once per instance, answer pushes.

``functions/deliver/main.py`` is a thin shim over :func:`handle_request`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec
from flask import Response

from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.secrets import CachedSecrets, build_secret_values
from hookpress.deliver._breaker import Breaker
from hookpress.deliver._errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from hookpress.deliver._http import handle
from hookpress.deliver._pipeline import CONTROL_DOCUMENT, Deliverer, Outcome, Result
from hookpress.deliver._wordpress import WordPressClient, classify
from hookpress.instance import Instance
from hookpress.logs import Logger
from hookpress.pushauth import CertsCache, OidcVerifier, PushAuthError, push_verifier
from hookpress.settings import DeliverSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Request

__all__ = [
    "CONTROL_DOCUMENT",
    "AuthenticationFailed",
    "Breaker",
    "CertsCache",
    "Deliverer",
    "DeliveryError",
    "OidcVerifier",
    "Outcome",
    "PermanentDeliveryError",
    "PushAuthError",
    "Result",
    "RetryableDeliveryError",
    "Runtime",
    "WordPressClient",
    "build_runtime",
    "classify",
    "handle_request",
    "install",
]

_log = Logger("deliver")


class Runtime(msgspec.Struct, frozen=True):
    """What one instance holds: the use case and the push verifier (None when off)."""

    deliverer: Deliverer
    verifier: OidcVerifier | None


def build_runtime(
    env: Mapping[str, str],
    *,
    log: Logger = _log,
    certs: CertsCache | None = None,
) -> Runtime:
    """Read the settings and wire the adapters (Google clients are built on first use)."""
    settings = DeliverSettings.from_env(env)
    timeout = 10.0
    values = build_secret_values(settings.secrets, settings.project, env, timeout)
    deliverer = Deliverer(
        settings,
        records=EventRecords(
            settings.project, settings.firestore_database, settings.events_collection, timeout
        ),
        raw=RawStore(settings.project, settings.raw_bucket, timeout),
        secrets=CachedSecrets(
            values,
            ttl_s=settings.secrets.cache_ttl_s,
            min_refresh_interval_s=settings.secrets.min_refresh_interval_s,
        ),
        wordpress=WordPressClient(
            settings.wp_base_url,
            settings.wp_user,
            connect_timeout_s=settings.wp_connect_timeout_s,
            read_timeout_s=settings.wp_read_timeout_s,
            env=env,
        ),
        breaker=Breaker(settings.breaker_threshold, settings.breaker_cooldown_s),
        log=log,
    )
    verifier = push_verifier(
        settings.push_auth, settings.push_audience, settings.push_service_account, log, certs
    )
    if settings.paused:
        log.warning("deliveries are paused by PAUSE_WP_DELIVERY", outcome="paused")
    return Runtime(deliverer, verifier)


def _build() -> Runtime:
    runtime = build_runtime(os.environ)
    # What the first push would wait for in turn, started now in threads: Google's keys
    # (fetched while cryptography imports), the connections, the token and the password.
    if runtime.verifier is not None:
        runtime.verifier.warm()
    runtime.deliverer.warm()
    _log.info("deliver ready", wordpress=runtime.deliverer.wordpress.url)
    return runtime


_instance: Instance[Runtime] = Instance(_build, _log)
install = _instance.install


def handle_request(request: Request) -> Response:
    """The functions-framework entry point's whole body."""
    runtime = _instance.ready()
    if runtime is None:
        return Response("misconfigured", status=503, mimetype="text/plain")
    return handle(runtime.deliverer, runtime.verifier, request, _log)
