"""When things run: the reconcile job and the WordPress password's rotation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from infra.config.model import ConfigError
from infra.config.reader import Reader

__all__ = ["Rotation", "read_reconcile_schedule", "read_rotation"]

_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
# Secret Manager refuses a next_rotation_time less than 300 s ahead:
# https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets#rotation
_ROTATION_LEAD = timedelta(minutes=5)

#: (rotation period in days, 0 = off; the first rotation time, if configured)
Rotation = tuple[int, str | None]


def read_reconcile_schedule(r: Reader) -> str:
    """``reconcileSchedule``: a five-field cron schedule (every five minutes by default)."""
    value = r.text("reconcileSchedule") or "*/5 * * * *"
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ConfigError(
            f"{r.key('reconcileSchedule')} must be a five-field cron schedule such as "
            f"'*/5 * * * *', got {value[:64]!r}."
        )
    return value


def read_rotation(r: Reader, now: datetime) -> Rotation:
    """How often the WordPress application password rotates, and when first if configured."""
    days = r.integer("wpPasswordRotationDays", 30, 0, 3650)
    return days, _first_rotation(r, "wpPasswordFirstRotation", now) if days else None


def _first_rotation(r: Reader, name: str, now: datetime) -> str | None:
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
