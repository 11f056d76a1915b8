"""The stack's configuration: read once, validated, typed.

Every key the program understands is read here and nowhere else, so
``docs/deploy.md`` can list them from one place. A bad value stops the program
with :class:`ConfigError`, whose message is one sentence naming the key; Pulumi
prints a :class:`pulumi.RunError` without a stack trace.

Secret values never pass through plain config: when ``manageSecretValues`` is
on they are read with ``require_secret``/``require_secret_object`` and stay
:class:`pulumi.Output` secrets all the way into Secret Manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pulumi

from hookpress.settings import SCHEMES

__all__ = [
    "BucketConfig",
    "ConfigError",
    "DeliverConfig",
    "FunctionSizing",
    "IngressConfig",
    "NetworkConfig",
    "ObservabilityConfig",
    "PushConfig",
    "Settings",
    "Source",
    "load",
]

NAMESPACE = "hookpress"

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_MEMORY = re.compile(r"^[1-9][0-9]*(Mi|Gi)$")
_CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
_STORAGE_CLASSES = ("NEARLINE", "COLDLINE", "ARCHIVE")
# Cloud Run functions accept these CPU values; below 1 a function serves one request at a time.
_CPUS = {"0.083": 0.083, "0.167": 0.167, "0.333": 0.333, "0.5": 0.5, "0.583": 0.583}
_CPUS.update({str(n): float(n) for n in (1, 2, 4, 6, 8)})


class ConfigError(pulumi.RunError):
    """A configuration value is missing or invalid; the message is one sentence naming it."""


@dataclass(frozen=True, slots=True)
class Source:
    """One webhook source: the path segment providers POST to, its scheme and its secret id."""

    name: str
    scheme: str
    secret_id: str


@dataclass(frozen=True, slots=True)
class FunctionSizing:
    """How one function scales: instances, per-instance concurrency, memory, CPU, timeout."""

    min_instances: int
    max_instances: int
    concurrency: int
    memory: str
    cpu: str
    timeout_s: int


@dataclass(frozen=True, slots=True)
class IngressConfig:
    """The public ingress function."""

    sizing: FunctionSizing
    max_body_bytes: int
    timestamp_tolerance_s: int


@dataclass(frozen=True, slots=True)
class DeliverConfig:
    """The private deliver function and the WordPress it calls."""

    sizing: FunctionSizing
    wp_base_url: str
    wp_user: str
    wp_app_password_secret_id: str
    wp_concurrency_cap: int
    wp_connect_timeout_s: float
    wp_read_timeout_s: float
    paused: bool


@dataclass(frozen=True, slots=True)
class PushConfig:
    """The push subscription from ``events`` to deliver."""

    ack_deadline_s: int
    min_backoff_s: int
    max_backoff_s: int
    max_delivery_attempts: int


@dataclass(frozen=True, slots=True)
class BucketConfig:
    """The raw-payload bucket's lifecycle."""

    location: str
    cold_after_days: int
    cold_storage_class: str
    delete_after_days: int
    soft_delete_days: int


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Static egress: the subnet the private functions leave from and the NAT addresses."""

    subnet_cidr: str
    egress_ip_count: int
    nat_min_ports_per_vm: int


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    """Where alerts go and when they fire."""

    alert_emails: tuple[str, ...]
    notification_channels: tuple[str, ...]
    oldest_unacked_alert_s: int
    delivery_failures_alert_threshold: int


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the program needs, validated; build it with :func:`load`."""

    project: str
    region: str
    prefix: str
    sources: tuple[Source, ...]
    ingress: IngressConfig
    deliver: DeliverConfig
    push: PushConfig
    bucket: BucketConfig
    network: NetworkConfig
    observability: ObservabilityConfig
    firestore_location: str
    firestore_database: str
    create_firestore_database: bool
    event_ttl_days: int
    reconcile_schedule: str
    rotation_period_days: int
    first_rotation: str | None
    manage_secret_values: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    wp_app_password: pulumi.Output[str] | None = None
    source_secret_values: pulumi.Output[Any] | None = None

    @property
    def rotation_enabled(self) -> bool:
        """Whether the WordPress application password rotates automatically."""
        return self.rotation_period_days > 0

    def function_name(self, short: str) -> str:
        """The deployed name of a function (and of its Cloud Run service)."""
        return f"{self.prefix}-{short}"

    def function_url(self, short: str) -> str:
        """The URL Cloud Run functions gives a function: known before it exists.

        The deliver function must be told its own URL (the OIDC audience it
        checks), which would otherwise be a dependency cycle.
        """
        return (
            f"https://{self.region}-{self.project}.cloudfunctions.net/{self.function_name(short)}"
        )


class _Reader:
    """Typed, validated access to one config namespace; every error is a sentence."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.cfg = pulumi.Config(namespace)

    def key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.cfg.get(name)
        if value is None:
            return default
        value = value.strip()
        return value or default

    def required(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(
                f"{self.key(name)} is not set: it must be {what} "
                f"(pulumi config set {self.key(name)} ...)."
            )
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(
                f"{self.key(name)} must be a whole number, got {raw[:32]!r}."
            ) from None
        if not lo <= value <= hi:
            raise ConfigError(f"{self.key(name)} must be between {lo} and {hi}, got {value}.")
        return value

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{self.key(name)} must be a number, got {raw[:32]!r}.") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{self.key(name)} must be between {lo} and {hi}, got {value}.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise ConfigError(f"{self.key(name)} must be true or false, got {raw[:32]!r}.")

    def obj(self, name: str) -> Any:
        try:
            return self.cfg.get_object(name)
        except Exception:  # noqa: BLE001  # pulumi raises a bare JSON error; say which key
            raise ConfigError(
                f"{self.key(name)} is not valid JSON/YAML structured config."
            ) from None

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.obj(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)} must be a list of strings.")
        return tuple(v.strip() for v in value if v.strip())


def _sources(r: _Reader, prefix: str) -> tuple[Source, ...]:
    data = r.obj("sources")
    if data is None:
        raise ConfigError(
            f"{r.key('sources')} is not set: it must map each source name to its scheme, e.g. "
            f"pulumi config set --path '{r.key('sources')}.stripe.scheme' stripe."
        )
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{r.key('sources')} must be a non-empty map of source name to settings.")
    sources: list[Source] = []
    secret_ids: set[str] = set()
    for name, spec in sorted(data.items()):
        if not isinstance(name, str) or not _SOURCE_NAME.match(name):
            raise ConfigError(
                f"{r.key('sources')} has an invalid source name {str(name)[:64]!r}: use "
                "lower-case letters, digits, '-' and '_' (at most 63)."
            )
        if not isinstance(spec, dict):
            raise ConfigError(f"{r.key('sources')}.{name} must be a map with a 'scheme' key.")
        unknown = set(spec) - {"scheme", "secret"}
        if unknown:
            raise ConfigError(
                f"{r.key('sources')}.{name} has unknown keys: {', '.join(sorted(unknown))}."
            )
        scheme = spec.get("scheme")
        if scheme not in SCHEMES:
            raise ConfigError(
                f"{r.key('sources')}.{name}.scheme must be one of "
                f"{', '.join(sorted(SCHEMES))}, got {str(scheme)[:32]!r}."
            )
        secret = spec.get("secret", f"{prefix}-source-{name}")
        if not isinstance(secret, str) or not _SECRET_ID.match(secret):
            raise ConfigError(
                f"{r.key('sources')}.{name}.secret must be a Secret Manager secret id "
                "(letters, digits, '-' and '_')."
            )
        if secret in secret_ids:
            raise ConfigError(
                f"{r.key('sources')}.{name}.secret {secret!r} is used by another source: "
                "each source needs its own secret."
            )
        secret_ids.add(secret)
        sources.append(Source(name=name, scheme=scheme, secret_id=secret))
    return tuple(sources)


def _memory(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    if not _MEMORY.match(value):
        raise ConfigError(f"{r.key(name)} must be a size such as 512Mi or 1Gi, got {value[:32]!r}.")
    return value


def _cpu(r: _Reader, name: str, default: str, concurrency: int) -> str:
    value = r.text(name, default) or default
    if value not in _CPUS:
        raise ConfigError(
            f"{r.key(name)} must be one of {', '.join(sorted(_CPUS, key=_CPUS.__getitem__))}, "
            f"got {value[:32]!r}."
        )
    if concurrency > 1 and _CPUS[value] < 1:
        raise ConfigError(
            f"{r.key(name)} is {value}, but a function serving {concurrency} concurrent "
            "requests needs at least 1 CPU: raise the CPU or set the concurrency to 1."
        )
    return value


def _url(r: _Reader, name: str) -> str:
    value = r.required(name, "the WordPress REST base URL, e.g. https://example.com/wp-json")
    if not re.match(r"^https://[^/\s?#@]+(/[^\s?#]*)?$", value):
        raise ConfigError(
            f"{r.key(name)} must be an https:// URL without credentials, query or fragment, "
            f"got {value[:64]!r}."
        )
    return value.rstrip("/")


def _cidr(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    match = _CIDR.match(value)
    if (
        not match
        or any(int(octet) > 255 for octet in match.groups()[:4])
        or not 16 <= int(match.group(5)) <= 28
    ):
        raise ConfigError(
            f"{r.key(name)} must be an IPv4 range from /16 to /28, e.g. 10.8.0.0/26, "
            f"got {value[:32]!r}."
        )
    return value


def _schedule(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ConfigError(
            f"{r.key(name)} must be a five-field cron schedule such as '*/5 * * * *', "
            f"got {value[:64]!r}."
        )
    return value


def _timestamp(r: _Reader, name: str) -> str | None:
    value = r.text(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ConfigError(
            f"{r.key(name)} must be an RFC 3339 UTC time such as 2026-01-05T03:00:00Z, "
            f"got {value[:40]!r}."
        )
    return value


def load() -> Settings:
    """Read and validate the whole stack configuration; raise ConfigError if anything is wrong."""
    gcp = _Reader("gcp")
    r = _Reader(NAMESPACE)

    project = gcp.required("project", "the Google Cloud project id")
    region = gcp.required("region", "the region to deploy to, e.g. europe-west1")
    prefix = r.text("namePrefix", "hookpress") or "hookpress"
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"{r.key('namePrefix')} must be 3 to 16 lower-case letters, digits or '-', "
            f"starting with a letter, got {prefix[:32]!r}."
        )

    sources = _sources(r, prefix)

    ingress_concurrency = r.integer("ingressConcurrency", 32, 1, 1000)
    ingress_min = r.integer("ingressMinInstances", 0, 0, 100)
    ingress_max = r.integer("ingressMaxInstances", 100, 1, 1000)
    if ingress_min > ingress_max:
        raise ConfigError(
            f"{r.key('ingressMinInstances')} ({ingress_min}) is larger than "
            f"{r.key('ingressMaxInstances')} ({ingress_max})."
        )
    ingress = IngressConfig(
        sizing=FunctionSizing(
            min_instances=ingress_min,
            max_instances=ingress_max,
            concurrency=ingress_concurrency,
            memory=_memory(r, "ingressMemory", "512Mi"),
            cpu=_cpu(r, "ingressCpu", "1", ingress_concurrency),
            timeout_s=r.integer("ingressTimeoutS", 60, 1, 3600),
        ),
        max_body_bytes=r.integer("maxBodyBytes", 1_048_576, 1_024, 33_554_432),
        timestamp_tolerance_s=r.integer("timestampToleranceS", 300, 1, 3_600),
    )

    cap = r.integer("wpConcurrencyCap", 8, 1, 1000)
    deliver_concurrency = r.integer("deliverConcurrency", 1, 1, 1000)
    if cap % deliver_concurrency:
        raise ConfigError(
            f"{r.key('wpConcurrencyCap')} ({cap}) must be a multiple of "
            f"{r.key('deliverConcurrency')} ({deliver_concurrency}), so that max instances "
            "times concurrency equals the cap WordPress is sized for."
        )
    deliver_timeout = r.integer("deliverTimeoutS", 60, 10, 600)
    connect = r.number("wpConnectTimeoutS", 5.0, 0.1, 60.0)
    read = r.number("wpReadTimeoutS", 30.0, 0.1, 300.0)
    if connect + read >= deliver_timeout:
        raise ConfigError(
            f"{r.key('wpConnectTimeoutS')} + {r.key('wpReadTimeoutS')} ({connect + read:g} s) "
            f"must be shorter than {r.key('deliverTimeoutS')} ({deliver_timeout} s), or the "
            "function is killed before it can answer Pub/Sub."
        )
    deliver = DeliverConfig(
        sizing=FunctionSizing(
            min_instances=0,
            max_instances=cap // deliver_concurrency,
            concurrency=deliver_concurrency,
            memory=_memory(r, "deliverMemory", "512Mi"),
            cpu=_cpu(
                r, "deliverCpu", "1" if deliver_concurrency > 1 else "0.5", deliver_concurrency
            ),
            timeout_s=deliver_timeout,
        ),
        wp_base_url=_url(r, "wpBaseUrl"),
        wp_user=r.required(
            "wpUser", "the WordPress user the ingest application password belongs to"
        ),
        wp_app_password_secret_id=r.text("wpAppPasswordSecretId", f"{prefix}-wp-app-password")
        or f"{prefix}-wp-app-password",
        wp_concurrency_cap=cap,
        wp_connect_timeout_s=connect,
        wp_read_timeout_s=read,
        paused=r.boolean("pauseDelivery", False),
    )
    if not _SECRET_ID.match(deliver.wp_app_password_secret_id):
        raise ConfigError(
            f"{r.key('wpAppPasswordSecretId')} must be a secret id (letters, digits, '-', '_')."
        )
    if deliver.wp_app_password_secret_id in {s.secret_id for s in sources}:
        raise ConfigError(
            f"{r.key('wpAppPasswordSecretId')} is also a source's secret: they must differ."
        )

    ack = r.integer("ackDeadlineS", deliver_timeout, 10, 600)
    if ack < deliver_timeout:
        raise ConfigError(
            f"{r.key('ackDeadlineS')} ({ack} s) must be at least {r.key('deliverTimeoutS')} "
            f"({deliver_timeout} s), or Pub/Sub redelivers messages deliver is still working on."
        )
    min_backoff = r.integer("retryMinBackoffS", 10, 10, 600)
    max_backoff = r.integer("retryMaxBackoffS", 600, 10, 600)
    if min_backoff > max_backoff:
        raise ConfigError(
            f"{r.key('retryMinBackoffS')} ({min_backoff} s) is larger than "
            f"{r.key('retryMaxBackoffS')} ({max_backoff} s)."
        )
    push = PushConfig(
        ack_deadline_s=ack,
        min_backoff_s=min_backoff,
        max_backoff_s=max_backoff,
        max_delivery_attempts=r.integer("deadLetterMaxAttempts", 5, 5, 100),
    )

    # Off by default: moving a small object costs a Class A operation at the colder
    # class's price, which webhook-sized payloads never earn back (docs/deploy.md).
    cold_after = r.integer("rawColdAfterDays", 0, 0, 3650)
    delete_after = r.integer("rawDeleteAfterDays", 365, 0, 36500)
    if cold_after and delete_after and delete_after <= cold_after:
        raise ConfigError(
            f"{r.key('rawDeleteAfterDays')} ({delete_after}) must be later than "
            f"{r.key('rawColdAfterDays')} ({cold_after}), or set one of them to 0 to turn it off."
        )
    cold_class = (r.text("rawColdStorageClass", "COLDLINE") or "COLDLINE").upper()
    if cold_class not in _STORAGE_CLASSES:
        raise ConfigError(
            f"{r.key('rawColdStorageClass')} must be one of {', '.join(_STORAGE_CLASSES)}, "
            f"got {cold_class[:32]!r}."
        )
    soft_delete = r.integer("rawSoftDeleteDays", 7, 0, 90)
    if 0 < soft_delete < 7:
        raise ConfigError(
            f"{r.key('rawSoftDeleteDays')} must be 0 (off) or between 7 and 90, got {soft_delete}."
        )
    event_ttl_days = r.integer("eventTtlDays", 30, 1, 3650)
    if delete_after and delete_after < event_ttl_days:
        raise ConfigError(
            f"{r.key('rawDeleteAfterDays')} ({delete_after}) must not be shorter than "
            f"{r.key('eventTtlDays')} ({event_ttl_days}): a record would outlive its payload."
        )
    bucket = BucketConfig(
        location=(r.text("rawBucketLocation", region) or region).upper(),
        cold_after_days=cold_after,
        cold_storage_class=cold_class,
        delete_after_days=delete_after,
        soft_delete_days=soft_delete,
    )

    network = NetworkConfig(
        subnet_cidr=_cidr(r, "egressSubnetCidr", "10.8.0.0/26"),
        egress_ip_count=r.integer("egressIpCount", 1, 1, 16),
        nat_min_ports_per_vm=r.integer("natMinPortsPerVm", 64, 32, 65536),
    )

    emails = r.string_list("alertEmails")
    for email in emails:
        if not _EMAIL.match(email):
            raise ConfigError(f"{r.key('alertEmails')} has {email[:64]!r}, not an e-mail address.")
    observability = ObservabilityConfig(
        alert_emails=emails,
        notification_channels=r.string_list("notificationChannels"),
        oldest_unacked_alert_s=r.integer("alertOldestUnackedS", 900, 60, 604_800),
        delivery_failures_alert_threshold=r.integer("alertDeliveryFailures", 0, 0, 1_000_000),
    )

    rotation_days = r.integer("wpPasswordRotationDays", 30, 0, 3650)
    manage = r.boolean("manageSecretValues", False)

    labels_raw = r.obj("labels")
    if labels_raw is not None and not (
        isinstance(labels_raw, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in labels_raw.items())
    ):
        raise ConfigError(f"{r.key('labels')} must be a map of strings to strings.")
    labels = {"app": "hookpress", **(labels_raw or {})}

    return Settings(
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
        reconcile_schedule=_schedule(r, "reconcileSchedule", "*/5 * * * *"),
        rotation_period_days=rotation_days,
        first_rotation=_timestamp(r, "wpPasswordFirstRotation"),
        manage_secret_values=manage,
        labels=labels,
        # Read only when the program is asked to hold the values: otherwise they are
        # added with `gcloud secrets versions add` and never touch the stack state.
        wp_app_password=r.cfg.require_secret("wpAppPassword") if manage else None,
        source_secret_values=r.cfg.require_secret_object("sourceSecrets") if manage else None,
    )
