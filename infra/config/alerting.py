"""Where alerts go and when they fire, and the BigQuery side-write (the warehouse)."""

from __future__ import annotations

import re
from typing import Any

from hookpress import config_rules as rules
from infra.config.model import ConfigError, ObservabilityConfig, WarehouseConfig
from infra.config.reader import Reader

__all__ = ["read_observability", "read_warehouse"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_BQ_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_WAREHOUSE_KEYS = frozenset(
    {"enabled", "dataset", "table", "location", "includePayload", "partitionExpirationDays"}
)


def read_observability(r: Reader, prefix: str) -> ObservabilityConfig:
    """The alert e-mails, channels (Slack included) and thresholds."""
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
    if not rules.SECRET_ID.match(slack_secret):
        raise ConfigError(f"{r.key('alertSlackTokenSecret')} must be a Secret Manager secret id.")
    return ObservabilityConfig(
        alert_emails=emails,
        notification_channels=r.string_list("notificationChannels"),
        oldest_unacked_alert_s=r.integer("alertOldestUnackedS", 900, 60, 604_800),
        delivery_failures_alert_threshold=r.integer("alertDeliveryFailures", 0, 0, 1_000_000),
        slack_channel=slack,
        slack_token_secret_id=slack_secret,
    )


def read_warehouse(r: Reader, region: str) -> WarehouseConfig:
    """``hookpress:warehouse``: off unless ``enabled``; ``includePayload`` reaches ingress."""
    data = r.obj("warehouse")
    if data is None:
        return WarehouseConfig(location=region)
    key = r.key("warehouse")
    if not isinstance(data, dict):
        raise ConfigError(f"{key} must be a map, e.g. {{enabled: true}}.")
    unknown = set(data) - _WAREHOUSE_KEYS
    if unknown:
        raise ConfigError(f"{key} has unknown keys: {', '.join(sorted(unknown))}.")
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
        enabled=_flag(key, "enabled", data.get("enabled", False)),
        dataset=names["dataset"],
        table=names["table"],
        location=location,
        include_payload=_flag(key, "includePayload", data.get("includePayload", False)),
        partition_expiration_days=days,
    )


def _flag(key: str, name: str, value: Any) -> bool:
    """A YAML boolean, or the text true/false (structured config holds no other switch)."""
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError(f"{key}.{name} must be true or false.")
    return value
