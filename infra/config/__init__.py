"""The stack's configuration: read once, validated, typed.

Every key the program understands is read in this package and nowhere else,
one module per concern, so ``docs/deploy.md`` can list them from one place:

- ``model``: what the settings hold (:class:`Settings` and its parts);
- ``reader``: typed access to a config namespace;
- ``sources``: ``hookpress:sources`` and the smoke source;
- ``functions``: sizing, ingress's limits, deliver's WordPress, the push subscription;
- ``storage``: the event TTL and the raw-payload bucket;
- ``network``: static egress;
- ``alerting``: alerts and the warehouse;
- ``schedules``: the reconcile job and the password rotation.

A key the program passes on to a function (the sources, body size,
tolerance, event TTL, WordPress timeouts, the pause and payload switches) is
read with that function's own rule, default and bounds from
``hookpress.config_rules``, so ``pulumi up`` accepts exactly what the function
will. A bad value stops the program with :class:`ConfigError`, whose message
is one sentence naming the key; Pulumi prints a :class:`pulumi.RunError`
without a stack trace.

Secret values never pass through plain config: when ``manageSecretValues`` is
on they are read with ``require_secret``/``require_secret_object`` and stay
:class:`pulumi.Output` secrets all the way into Secret Manager.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from hookpress.lanes import lane_shares, lanes_in_use
from infra.config.alerting import read_observability, read_warehouse
from infra.config.functions import read_deliver, read_ingress, read_push
from infra.config.model import (
    EGRESS_PATHS,
    NAMESPACE,
    SMOKE_SCHEME,
    SMOKE_SOURCE,
    BucketConfig,
    ConfigError,
    DeliverConfig,
    EgressPath,
    FunctionSizing,
    IngressConfig,
    NetworkConfig,
    ObservabilityConfig,
    PushConfig,
    Settings,
    Source,
    WarehouseConfig,
)
from infra.config.network import read_network
from infra.config.reader import Reader
from infra.config.schedules import read_reconcile_schedule, read_rotation
from infra.config.sources import read_sources
from infra.config.storage import read_bucket, read_event_ttl

__all__ = [
    "EGRESS_PATHS",
    "SMOKE_SCHEME",
    "SMOKE_SOURCE",
    "BucketConfig",
    "ConfigError",
    "DeliverConfig",
    "EgressPath",
    "FunctionSizing",
    "IngressConfig",
    "NetworkConfig",
    "ObservabilityConfig",
    "PushConfig",
    "Settings",
    "Source",
    "WarehouseConfig",
    "load",
]

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")


def load(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Settings:
    """Read and validate the whole stack configuration; raise ConfigError if anything is wrong."""
    gcp, r = Reader("gcp"), Reader(NAMESPACE)
    project = gcp.required("project", "the Google Cloud project id")
    region = gcp.required("region", "the region to deploy to, e.g. europe-west1")
    prefix = _prefix(r)
    sources, smoke = read_sources(r, prefix)
    project_number = r.text("projectNumber")
    ingress = read_ingress(r)
    deliver = read_deliver(r, prefix, sources)
    push = read_push(r, deliver.sizing.timeout_s)
    event_ttl_days = read_event_ttl(r)
    bucket = read_bucket(r, region, event_ttl_days)
    rotation_days, first_rotation = read_rotation(r, now())
    # deliver's instances, plus rotate's one while rotation is on.
    vpc_instances = deliver.sizing.max_instances + (1 if rotation_days else 0)
    network = read_network(r, vpc_instances)
    observability = read_observability(r, prefix)
    warehouse = read_warehouse(r, region)
    manage = r.boolean("manageSecretValues", False)
    labels = _labels(r)
    try:
        lane_shares(
            deliver.wp_concurrency_cap,
            deliver.sizing.concurrency,
            lanes_in_use(src.lane for src in sources),
        )
    except ValueError as exc:
        raise ConfigError(f"{r.key('wpConcurrencyCap')}: {exc}.") from None

    settings = Settings(
        project=project,
        region=region,
        prefix=prefix,
        sources=sources,
        ingress=ingress,
        deliver=deliver,
        push=push,
        bucket=bucket,
        network=network,
        observability=observability,
        firestore_location=r.text("firestoreLocation", region) or region,
        firestore_database=r.text("firestoreDatabase", "(default)") or "(default)",
        create_firestore_database=r.boolean("createFirestoreDatabase", True),
        event_ttl_days=event_ttl_days,
        reconcile_schedule=read_reconcile_schedule(r),
        rotation_period_days=rotation_days,
        first_rotation=first_rotation,
        manage_secret_values=manage,
        labels=labels,
        warehouse=warehouse,
        # Read only when the program is asked to hold the values: otherwise they are
        # added with `gcloud secrets versions add` and never touch the stack state.
        wp_app_password=r.cfg.require_secret("wpAppPassword") if manage else None,
        source_secret_values=r.cfg.require_secret_object("sourceSecrets") if manage else None,
        project_number=None,
        smoke_source=smoke,
        iam_settle_s=r.integer("iamSettleS", 180, 0, 900),
        metric_settle_s=r.integer("metricSettleS", 600, 0, 1200),
    )
    return settings if project_number is None else settings.with_project_number(project_number)


def _prefix(r: Reader) -> str:
    prefix = r.text("namePrefix", "hookpress") or "hookpress"
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"{r.key('namePrefix')} must be 3 to 16 lower-case letters, digits or '-', "
            f"starting with a letter, got {prefix[:32]!r}."
        )
    return prefix


def _labels(r: Reader) -> dict[str, str]:
    labels = r.obj("labels")
    if labels is not None and not (
        isinstance(labels, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise ConfigError(f"{r.key('labels')} must be a map of strings to strings.")
    return {"app": "hookpress", **(labels or {})}
