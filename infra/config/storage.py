"""How long events and their raw payloads are kept, and where the payloads live."""

from __future__ import annotations

from hookpress import config_rules as rules
from infra.config.model import BucketConfig, ConfigError
from infra.config.reader import Reader

__all__ = ["read_bucket", "read_event_ttl"]

_STORAGE_CLASSES = ("NEARLINE", "COLDLINE", "ARCHIVE")


def read_event_ttl(r: Reader) -> int:
    """Days a record is kept: the functions' ``HOOKPRESS_EVENT_TTL_DAYS``."""
    return r.knob("eventTtlDays", rules.EVENT_TTL_DAYS)


def read_bucket(r: Reader, region: str, event_ttl_days: int) -> BucketConfig:
    """The raw-payload bucket: location, the colder class (off by default), deletion."""
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
    if delete_after and delete_after < event_ttl_days:
        raise ConfigError(
            f"{r.key('rawDeleteAfterDays')} ({delete_after}) must not be shorter than "
            f"{r.key('eventTtlDays')} ({event_ttl_days}): a record would outlive its payload."
        )
    return BucketConfig(
        location=(r.text("rawBucketLocation", region) or region).upper(),
        cold_after_days=cold_after,
        cold_storage_class=cold_class,
        delete_after_days=delete_after,
        soft_delete_days=soft_delete,
    )
