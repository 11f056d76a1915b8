"""What the stack's configuration holds once read: typed, immutable, validated.

:func:`infra.config.load` builds a :class:`Settings`; the components take
the parts they need. The constants here are the ones other modules name
(the smoke source, the egress paths, the config namespace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pulumi

from hookpress.lanes import lane_instances, lanes_in_use

NAMESPACE = "hookpress"

_PROJECT_NUMBER = re.compile(r"^[1-9][0-9]{5,18}$")

EgressPath = Literal["connector", "direct"]
#: How deliver and rotate reach WordPress through Cloud NAT (docs/deploy.md, "Egress").
EGRESS_PATHS: tuple[EgressPath, ...] = ("connector", "direct")
#: The source `hookpress smoke` signs with; the program generates its secret.
SMOKE_SOURCE = "smoke"
SMOKE_SCHEME = "hmac-timestamp"
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
    # Whether the config sets ``tolerance``: null included, which means the deployment's
    # timestampToleranceS instead of the provider's own window.
    tolerance_set: bool = False
    url: str | None = None  # the public URL a URL-signing provider (Twilio) signs

    def spec(self) -> dict[str, object]:
        """This source as an entry of ``HOOKPRESS_SOURCES`` (``config_rules.parse_source``)."""
        spec: dict[str, object] = {
            "provider": self.provider or self.scheme,
            "secret": self.secret_id,
            "lane": self.lane,
        }
        if self.tolerance_set:
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
        instances = lane_instances(self.deliver.wp_concurrency_cap, d.concurrency, self.lanes)
        return replace(d, max_instances=instances[lane])

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
