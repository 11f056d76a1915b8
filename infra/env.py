"""The environment of each deployed function, from the stack settings.

Ingress and deliver read exactly these variables through
``hookpress.settings`` (``IngressSettings.from_env``/``DeliverSettings.from_env``);
the infra tests parse the environments built here with those very functions.
A variable with a default and bounds is named by its rule in
``hookpress.config_rules``, the one the program read the key with.
Secrets are named (Secret Manager secret ids), never included: the
functions fetch the values at run time with their own identity. The secrets
backend is left to its default, Secret Manager.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

from hookpress import config_rules as rules
from infra.config import Settings

__all__ = ["deliver_env", "ingress_env", "reconcile_env", "rotate_env", "sources_json"]

Env = Mapping[str, pulumi.Input[str]]


def _seconds(value: float) -> str:
    """Text the function reads back as this very number: ``5`` for 5.0, every digit otherwise.

    (``:g`` alone keeps six significant digits: 12.3456789 would deploy as 12.3457.)
    """
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def sources_json(settings: Settings) -> str:
    """``HOOKPRESS_SOURCES``: each source's provider, lane and the *id* of its secret.

    A URL-signing provider (Twilio) also gets the public URL it is given: the
    source's path under the ingress's deterministic URL, unless ``url`` is set
    (a custom domain, a load balancer).
    """
    specs: dict[str, dict[str, object]] = {}
    for source in settings.sources:
        spec = source.spec()
        if source.scheme == "twilio" and "url" not in spec:
            spec["url"] = f"{settings.function_url('ingress')}/{source.name}"
        specs[source.name] = spec
    return json.dumps(specs, sort_keys=True, separators=(",", ":"))


def _common(settings: Settings) -> dict[str, pulumi.Input[str]]:
    return {
        "HOOKPRESS_PROJECT": settings.project,
        "HOOKPRESS_FIRESTORE_DATABASE": settings.firestore_database,
        rules.EVENT_TTL_DAYS.variable: str(settings.event_ttl_days),
    }


def ingress_env(
    settings: Settings, *, raw_bucket: pulumi.Input[str], events_topic: pulumi.Input[str]
) -> Env:
    """What ``IngressSettings.from_env`` reads."""
    return {
        **_common(settings),
        **_server(settings.ingress.sizing.concurrency),
        "HOOKPRESS_SOURCES": sources_json(settings),
        "HOOKPRESS_RAW_BUCKET": raw_bucket,
        "HOOKPRESS_EVENTS_TOPIC": events_topic,
        rules.MAX_BODY_BYTES.variable: str(settings.ingress.max_body_bytes),
        rules.TIMESTAMP_TOLERANCE_S.variable: str(settings.ingress.timestamp_tolerance_s),
        # The warehouse's BigQuery subscription writes the message: the payload too, if asked.
        **(
            {rules.MESSAGE_PAYLOAD.variable: "true"}
            if settings.warehouse.enabled and settings.warehouse.include_payload
            else {}
        ),
    }


def _server(concurrency: int) -> dict[str, pulumi.Input[str]]:
    """One gunicorn worker, one thread per concurrent request.

    Deliver, reconcile and rotate run in functions-framework's default mode, where
    THREADS is gunicorn's thread count, four per CPU by default: on a 1-vCPU instance
    allowed 32 concurrent requests, 28 of them would wait in gunicorn's queue (the
    benchmark's sweep). The ingress runs in its ASGI mode (one event loop), where
    THREADS sizes the pool its pipelines run in (``hookpress.ingress.pool_size``).
    """
    return {"WORKERS": "1", "THREADS": str(concurrency)}


def _wordpress(settings: Settings) -> dict[str, pulumi.Input[str]]:
    d = settings.deliver
    return {
        "HOOKPRESS_WP_BASE_URL": d.wp_base_url,
        "HOOKPRESS_WP_USER": d.wp_user,
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": d.wp_app_password_secret_id,
    }


def _push(audience: str, push_account: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The caller check: the audience is the function's service URL, the one its caller signs for.

    The same ``Settings.function_url`` gives the push subscription's or the
    scheduler job's endpoint and audience (``infra/__main__.py``).
    """
    return {
        "HOOKPRESS_PUSH_AUTH": "oidc",
        "HOOKPRESS_PUSH_AUDIENCE": audience,
        "HOOKPRESS_PUSH_SERVICE_ACCOUNT": push_account,
    }


def deliver_env(
    settings: Settings,
    *,
    raw_bucket: pulumi.Input[str],
    push_account: pulumi.Input[str],
    short: str = "deliver",
) -> Env:
    """What ``DeliverSettings.from_env`` reads; the audience is the function's own URL.

    ``short`` names a lane's deliver function (``deliver-high``, ``deliver-bulk``).
    """
    d = settings.deliver
    return {
        **_common(settings),
        **_server(d.sizing.concurrency),
        **_wordpress(settings),
        **_push(settings.function_url(short), push_account),
        "HOOKPRESS_RAW_BUCKET": raw_bucket,
        rules.WP_CONNECT_TIMEOUT_S.variable: _seconds(d.wp_connect_timeout_s),
        rules.WP_READ_TIMEOUT_S.variable: _seconds(d.wp_read_timeout_s),
        rules.PAUSE_WP_DELIVERY.variable: "true" if d.paused else "false",
    }


def reconcile_env(
    settings: Settings, *, events_topic: pulumi.Input[str], caller: pulumi.Input[str]
) -> Env:
    """The reconciler: the records it sweeps, the topic it re-publishes to, who may call it."""
    return {
        **_common(settings),
        **_push(settings.function_url("reconcile"), caller),
        "HOOKPRESS_EVENTS_TOPIC": events_topic,
    }


def rotate_env(settings: Settings, *, push_account: pulumi.Input[str]) -> Env:
    """The rotator: the WordPress it creates passwords on and the secret it stores them in."""
    return {
        "HOOKPRESS_PROJECT": settings.project,
        **_wordpress(settings),
        **_push(settings.function_url("rotate"), push_account),
    }
