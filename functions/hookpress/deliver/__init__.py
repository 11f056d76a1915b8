"""The deliver function's core: build the runtime once per instance, answer pushes.

``functions/deliver/main.py`` is a thin shim over :func:`handle_request`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from hookpress.logs import Logger
from hookpress.pushauth import CertsCache, OidcVerifier, PushAuthError
from hookpress.settings import DeliverSettings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx
    from flask import Request, Response

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
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one instance holds: the use case and the push verifier (None when off)."""

    deliverer: Deliverer
    verifier: OidcVerifier | None


_runtime: Runtime | None = None


def build_runtime(
    env: Mapping[str, str],
    *,
    log: Logger = _log,
    transport: httpx.BaseTransport | None = None,
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
            transport=transport,
        ),
        breaker=Breaker(settings.breaker_threshold, settings.breaker_cooldown_s),
        log=log,
    )
    verifier: OidcVerifier | None = None
    if settings.push_audience and settings.push_service_account and settings.push_auth == "oidc":
        verifier = OidcVerifier(
            settings.push_audience, settings.push_service_account, certs or CertsCache()
        )
    else:
        log.warning(
            "PUSH AUTHENTICATION IS OFF (HOOKPRESS_PUSH_AUTH=none): any caller that reaches "
            "this function can trigger deliveries. Only the local stack may run like this.",
            outcome="push_auth_disabled",
        )
    if settings.paused:
        log.warning("deliveries are paused by PAUSE_WP_DELIVERY", outcome="paused")
    return Runtime(deliverer, verifier)


def install(runtime: Runtime | None) -> None:
    """Use ``runtime`` for the following requests (tests inject adapters this way)."""
    global _runtime
    with _lock:
        _runtime = runtime


def _current() -> Runtime:
    global _runtime
    if _runtime is not None:
        return _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(os.environ)
            _log.info("deliver ready", wordpress=_runtime.deliverer.wordpress.url)
        return _runtime


def handle_request(request: Request) -> Response:
    """The functions-framework entry point's whole body."""
    from flask import Response

    try:
        runtime = _current()
    except SettingsError as exc:
        _log.critical(f"deliver is misconfigured: {exc}", outcome="misconfigured")
        return Response("misconfigured", status=503, mimetype="text/plain")
    return handle(runtime.deliverer, runtime.verifier, request, _log)
