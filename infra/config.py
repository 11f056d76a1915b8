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

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pulumi

from hookpress.lanes import lane_shares, lanes_in_use
from hookpress.settings import SettingsError, parse_source

__all__ = [
    "EGRESS_PATHS",
    "SMOKE_SCHEME",
    "SMOKE_SOURCE",
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
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_MEMORY = re.compile(r"^[1-9][0-9]*(Mi|Gi)$")
_CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
_STORAGE_CLASSES = ("NEARLINE", "COLDLINE", "ARCHIVE")
_PROJECT_NUMBER = re.compile(r"^[1-9][0-9]{5,18}$")
# Cloud Run functions accept these CPU values; below 1 a function serves one request at a time.
_CPUS = {"0.083": 0.083, "0.167": 0.167, "0.333": 0.333, "0.5": 0.5, "0.583": 0.583}
_CPUS.update({str(n): float(n) for n in (1, 2, 4, 6, 8)})

EgressPath = Literal["connector", "direct"]
#: How deliver and rotate reach WordPress through Cloud NAT (docs/deploy.md, "Egress").
EGRESS_PATHS: tuple[EgressPath, ...] = ("connector", "direct")
#: The source `hookpress smoke` signs with; the program generates its secret.
SMOKE_SOURCE = "smoke"
SMOKE_SCHEME = "hmac-timestamp"
# Secret Manager refuses a next_rotation_time less than 300 s ahead:
# https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets#rotation
_ROTATION_LEAD = timedelta(minutes=5)
# A DNS label is at most 63 characters; Cloud Run gives no deterministic URL above that:
# https://cloud.google.com/run/docs/triggering/https-request#deterministic
_DNS_LABEL = 63
_PRIVATE_FUNCTIONS = ("deliver", "reconcile", "rotate")


class ConfigError(pulumi.RunError):
    """A configuration value is missing or invalid; the message is one sentence naming it."""


@dataclass(frozen=True, slots=True)
class Source:
    """One webhook source: the path segment providers POST to, its provider and secret id."""

    name: str
    scheme: str
    secret_id: str
    # The program makes its value (the smoke source); none is read from config.
    generated: bool = False
    provider: str = ""
    lane: str = "normal"
    tolerance_s: int | None = None
    url: str | None = None  # the public URL a URL-signing provider (Twilio) signs

    def spec(self) -> dict[str, object]:
        """The entry of ``HOOKPRESS_SOURCES`` (what ``hookpress.settings.parse_source`` reads)."""
        spec: dict[str, object] = {
            "provider": self.provider or self.scheme,
            "secret": self.secret_id,
            "lane": self.lane,
        }
        if self.tolerance_s is not None:
            spec["tolerance"] = self.tolerance_s
        if self.url:
            spec["url"] = self.url
        return spec


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
    """Static egress: how the private functions reach the VPC, its subnet and the NAT addresses."""

    subnet_cidr: str
    egress_ip_count: int
    nat_min_ports_per_vm: int
    egress_path: EgressPath = "connector"
    connector_min_instances: int = 2
    connector_max_instances: int = 3


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    """Where alerts go and when they fire."""

    alert_emails: tuple[str, ...]
    notification_channels: tuple[str, ...]
    oldest_unacked_alert_s: int
    delivery_failures_alert_threshold: int
    slack_channel: str | None = None  # e.g. "#hookpress-oncall" (infra/alerting.py)
    slack_token_secret_id: str = ""  # the Secret Manager secret holding its token


@dataclass(frozen=True, slots=True)
class WarehouseConfig:
    """The BigQuery side-write (infra/warehouse.py)."""

    enabled: bool = False
    dataset: str = "hookpress"
    table: str = "events"
    location: str = ""
    include_payload: bool = False
    partition_expiration_days: int = 0


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
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    wp_app_password: pulumi.Output[str] | None = None
    source_secret_values: pulumi.Output[Any] | None = None
    # None until resolved (hookpress:projectNumber, or the project itself: see
    # infra/__main__.py); the deterministic service URLs need it.
    project_number: str | None = None
    smoke_source: bool = True
    # How long to wait for IAM grants and for new log-based metrics (first up only).
    iam_settle_s: int = 180
    metric_settle_s: int = 600

    @property
    def lanes(self) -> tuple[str, ...]:
        """The delivery lanes in use (``normal`` always); each its own subscription and service."""
        return lanes_in_use(src.lane for src in self.sources)

    def lane_sizing(self, lane: str) -> FunctionSizing:
        """The deliver sizing of one lane: its share of ``wpConcurrencyCap`` (hookpress.lanes)."""
        d = self.deliver.sizing
        if self.lanes == ("normal",):
            return d
        share = lane_shares(self.deliver.wp_concurrency_cap, d.concurrency, self.lanes)[lane]
        return replace(d, max_instances=share // d.concurrency)

    @property
    def rotation_enabled(self) -> bool:
        """Whether the WordPress application password rotates automatically."""
        return self.rotation_period_days > 0

    def function_name(self, short: str) -> str:
        """The deployed name of a function (and of its Cloud Run service)."""
        return f"{self.prefix}-{short}"

    def with_project_number(self, number: str) -> Settings:
        """These settings with the project number known (checked as the config key is)."""
        if not _PROJECT_NUMBER.match(number):
            raise ConfigError(
                f"{NAMESPACE}:projectNumber must be the project's number (digits only), "
                f"got {number[:32]!r}."
            )
        longest = max(len(f"{self.function_name(f)}-{number}") for f in _PRIVATE_FUNCTIONS)
        if longest > _DNS_LABEL:
            raise ConfigError(
                f"{NAMESPACE}:namePrefix {self.prefix!r} is too long: a function's name and the "
                f"project number make a {longest}-character DNS label, and Cloud Run gives a "
                f"deterministic URL only up to {_DNS_LABEL}."
            )
        return replace(self, project_number=number)

    def function_url(self, short: str) -> str:
        """The function's Cloud Run service URL, in its deterministic form: known before it exists.

        ``https://SERVICE-PROJECT_NUMBER.REGION.run.app``
        (https://cloud.google.com/run/docs/triggering/https-request#deterministic).
        Pub/Sub push and Cloud Scheduler count as internal callers of an
        internal-only service only at its ``run.app`` URL
        (https://cloud.google.com/run/docs/securing/ingress), and Cloud Run's own
        token check wants that URL as the audience
        (https://cloud.google.com/run/docs/configuring/custom-audiences). The
        private functions are told their URL (the audience they check) before
        they exist, which would otherwise be a dependency cycle.
        """
        if self.project_number is None:
            raise ConfigError(
                "the project number is not known yet: set hookpress:projectNumber "
                "(gcloud projects describe PROJECT --format='value(projectNumber)')."
            )
        return f"https://{self.function_name(short)}-{self.project_number}.{self.region}.run.app"


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
        # The functions' own validator: one rule for HOOKPRESS_SOURCES and this config.
        try:
            parsed = parse_source(name, spec, r.key("sources"), f"{prefix}-source-{name}")
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None
        secret = parsed.secret
        if not _SECRET_ID.match(secret):
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
        sources.append(
            Source(
                name=name,
                scheme=parsed.scheme,
                secret_id=secret,
                provider=parsed.provider,
                lane=parsed.lane,
                tolerance_s=parsed.tolerance_s if "tolerance" in spec else None,
                url=parsed.url,
            )
        )
    return tuple(sources)


_SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_BQ_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_WAREHOUSE_KEYS = frozenset(
    {"enabled", "dataset", "table", "location", "includePayload", "partitionExpirationDays"}
)


def _warehouse(r: _Reader, region: str) -> WarehouseConfig:
    data = r.obj("warehouse")
    if data is None:
        return WarehouseConfig(location=region)
    key = r.key("warehouse")
    if not isinstance(data, dict):
        raise ConfigError(f"{key} must be a map, e.g. {{enabled: true}}.")
    unknown = set(data) - _WAREHOUSE_KEYS
    if unknown:
        raise ConfigError(f"{key} has unknown keys: {', '.join(sorted(unknown))}.")

    def flag(name: str) -> bool:
        value = data.get(name, False)
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{key}.{name} must be true or false.")
        return value

    names = {}
    for name, default in (("dataset", "hookpress"), ("table", "events")):
        value = data.get(name, default)
        if not isinstance(value, str) or not _BQ_ID.match(value):
            raise ConfigError(f"{key}.{name} must be a BigQuery id (letters, digits, '_').")
        names[name] = value
    days = data.get("partitionExpirationDays", 0)
    if isinstance(days, str) and days.isdigit():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 36_500:
        raise ConfigError(f"{key}.partitionExpirationDays must be whole days, 0 (keep) or more.")
    location = data.get("location", region)
    if not isinstance(location, str) or not location:
        raise ConfigError(f"{key}.location must be a BigQuery location such as {region} or EU.")
    return WarehouseConfig(
        enabled=flag("enabled"),
        dataset=names["dataset"],
        table=names["table"],
        location=location,
        include_payload=flag("includePayload"),
        partition_expiration_days=days,
    )


def _memory(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    if not _MEMORY.match(value):
        raise ConfigError(f"{r.key(name)} must be a size such as 512Mi or 1Gi, got {value[:32]!r}.")
    return value


def _mebibytes(memory: str) -> int:
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)


def _cpu(r: _Reader, name: str, default: str, concurrency: int, memory: str = "512Mi") -> str:
    """A CPU value Cloud Run accepts with this concurrency and memory.

    Below 1 vCPU, Cloud Run requires a concurrency of 1, at least 0.5 vCPU above
    512 MiB and 1 vCPU above 1 GiB
    (https://cloud.google.com/run/docs/configuring/services/cpu#cpu-memory).
    """
    value = r.text(name, default) or default
    if value not in _CPUS:
        raise ConfigError(
            f"{r.key(name)} must be one of {', '.join(sorted(_CPUS, key=_CPUS.__getitem__))}, "
            f"got {value[:32]!r}."
        )
    cpu = _CPUS[value]
    if concurrency > 1 and cpu < 1:
        raise ConfigError(
            f"{r.key(name)} is {value}, but a function serving {concurrency} concurrent "
            "requests needs at least 1 CPU: raise the CPU or set the concurrency to 1."
        )
    mib = _mebibytes(memory)
    needed = 1.0 if mib > 1024 else 0.5 if mib > 512 else 0.0
    if cpu < needed:
        raise ConfigError(
            f"{r.key(name)} is {value}, but Cloud Run needs at least {needed:g} CPU for "
            f"{memory} of memory: raise the CPU or lower the memory."
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
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ConfigError(
            f"{r.key(name)} {value} has host bits set: use the range's first address "
            f"({ipaddress.ip_network(value, strict=False)})."
        ) from None
    return value


# Every subnet loses four addresses to Google
# (https://cloud.google.com/vpc/docs/subnets#unusable-ip-addresses-in-every-subnet).
_RESERVED_PER_SUBNET = 4


def _egress_subnet(r: _Reader, path: EgressPath, vpc_instances: int) -> str:
    """The egress subnet: a /28 of its own for a connector; /26 or larger for Direct VPC egress.

    A Serverless VPC Access connector takes a dedicated /28
    (https://cloud.google.com/vpc/docs/serverless-vpc-access#ip_address_ranges). Direct
    VPC egress reserves addresses 16 (a /28) at a time, uses twice as many as
    instances run, and Google requires the range to be /26 or larger
    (https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#direct-vpc-ip-allocation).
    """
    name = "egressSubnetCidr"
    cidr = _cidr(r, name, "10.8.0.0/28" if path == "connector" else "10.8.0.0/26")
    prefix = int(cidr.rsplit("/", 1)[1])
    if path == "connector":
        if prefix != 28:
            raise ConfigError(
                f"{r.key(name)} is {cidr}, but a Serverless VPC Access connector needs a /28 "
                f"of its own (egressPath connector), e.g. 10.8.0.0/28."
            )
        return cidr
    if prefix > 26:
        raise ConfigError(
            f"{r.key(name)} is {cidr}, but Direct VPC egress needs /26 or larger "
            "(Google's minimum), e.g. 10.8.0.0/26."
        )
    needed = -(-2 * vpc_instances // 16) * 16
    usable = 2 ** (32 - prefix) - _RESERVED_PER_SUBNET
    if usable < needed:
        raise ConfigError(
            f"{r.key(name)} {cidr} has {usable} usable addresses, but Direct VPC egress needs "
            f"{needed} for {vpc_instances} instances (twice the instances, in blocks of 16): "
            "use a larger range."
        )
    return cidr


def _schedule(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ConfigError(
            f"{r.key(name)} must be a five-field cron schedule such as '*/5 * * * *', "
            f"got {value[:64]!r}."
        )
    return value


def _first_rotation(r: _Reader, name: str, now: datetime) -> str | None:
    """A configured first rotation time, which Secret Manager needs at least 5 minutes ahead."""
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
    if parsed < now + _ROTATION_LEAD:
        raise ConfigError(
            f"{r.key(name)} ({value}) is less than 5 minutes ahead, which Secret Manager "
            "refuses; if the secret already exists, Secret Manager keeps its schedule and the "
            f"key is no longer needed: pulumi config rm {r.key(name)}."
        )
    return value


def load(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Settings:
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
    smoke = r.boolean("smokeSource", True)
    if smoke:
        if SMOKE_SOURCE in {s.name for s in sources}:
            raise ConfigError(
                f"{r.key('sources')} has a source named {SMOKE_SOURCE!r}, which the program "
                f"provisions for `hookpress smoke`: rename it, or set {r.key('smokeSource')} "
                "false."
            )
        smoke_secret = f"{prefix}-source-{SMOKE_SOURCE}"
        if smoke_secret in {s.secret_id for s in sources}:
            raise ConfigError(
                f"{r.key('sources')} uses the secret {smoke_secret!r}, which the smoke source "
                "needs: give that source another secret id."
            )
        sources = (
            *sources,
            Source(name=SMOKE_SOURCE, scheme=SMOKE_SCHEME, secret_id=smoke_secret, generated=True),
        )
    project_number = r.text("projectNumber")

    ingress_concurrency = r.integer("ingressConcurrency", 32, 1, 1000)
    ingress_memory = _memory(r, "ingressMemory", "512Mi")
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
            memory=ingress_memory,
            cpu=_cpu(r, "ingressCpu", "1", ingress_concurrency, ingress_memory),
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
    deliver_memory = _memory(r, "deliverMemory", "512Mi")
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
            memory=deliver_memory,
            cpu=_cpu(
                r,
                "deliverCpu",
                "1" if deliver_concurrency > 1 else "0.5",
                deliver_concurrency,
                deliver_memory,
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

    path = r.text("egressPath", "connector") or "connector"
    if path not in EGRESS_PATHS:
        raise ConfigError(f"{r.key('egressPath')} must be connector or direct, got {path[:32]!r}.")
    egress_path: EgressPath = "direct" if path == "direct" else "connector"
    rotation_days = r.integer("wpPasswordRotationDays", 30, 0, 3650)
    # deliver's instances, plus rotate's one while rotation is on.
    vpc_instances = deliver.sizing.max_instances + (1 if rotation_days else 0)
    connector_min = r.integer("connectorMinInstances", 2, 2, 9)
    connector_max = r.integer("connectorMaxInstances", 3, 3, 10)
    if connector_max <= connector_min:
        raise ConfigError(
            f"{r.key('connectorMaxInstances')} ({connector_max}) must be larger than "
            f"{r.key('connectorMinInstances')} ({connector_min})."
        )
    network = NetworkConfig(
        subnet_cidr=_egress_subnet(r, egress_path, vpc_instances),
        egress_ip_count=r.integer("egressIpCount", 1, 1, 16),
        nat_min_ports_per_vm=r.integer("natMinPortsPerVm", 64, 32, 65536),
        egress_path=egress_path,
        connector_min_instances=connector_min,
        connector_max_instances=connector_max,
    )

    emails = r.string_list("alertEmails")
    for email in emails:
        if not _EMAIL.match(email):
            raise ConfigError(f"{r.key('alertEmails')} has {email[:64]!r}, not an e-mail address.")
    slack = r.text("alertSlackChannel")
    if slack is not None and not _SLACK_CHANNEL.match(slack):
        raise ConfigError(
            f"{r.key('alertSlackChannel')} must be a Slack channel name such as "
            f"#hookpress-oncall, got {slack[:64]!r}."
        )
    slack_secret = r.text("alertSlackTokenSecret", f"{prefix}-slack-token") or ""
    if not _SECRET_ID.match(slack_secret):
        raise ConfigError(f"{r.key('alertSlackTokenSecret')} must be a Secret Manager secret id.")
    observability = ObservabilityConfig(
        alert_emails=emails,
        notification_channels=r.string_list("notificationChannels"),
        oldest_unacked_alert_s=r.integer("alertOldestUnackedS", 900, 60, 604_800),
        delivery_failures_alert_threshold=r.integer("alertDeliveryFailures", 0, 0, 1_000_000),
        slack_channel=slack,
        slack_token_secret_id=slack_secret,
    )
    warehouse = _warehouse(r, region)

    manage = r.boolean("manageSecretValues", False)

    labels_raw = r.obj("labels")
    if labels_raw is not None and not (
        isinstance(labels_raw, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in labels_raw.items())
    ):
        raise ConfigError(f"{r.key('labels')} must be a map of strings to strings.")
    labels = {"app": "hookpress", **(labels_raw or {})}

    try:
        lane_shares(cap, deliver_concurrency, lanes_in_use(src.lane for src in sources))
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
        reconcile_schedule=_schedule(r, "reconcileSchedule", "*/5 * * * *"),
        rotation_period_days=rotation_days,
        first_rotation=_first_rotation(r, "wpPasswordFirstRotation", now())
        if rotation_days
        else None,
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
