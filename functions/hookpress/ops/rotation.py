"""Rotating a source's signing secret without dropping a single event.

The ingress accepts a signature made with *any enabled version* of the
source's secret, so a rotation is two steps with a grace period between:

1. :func:`add_version`: the new value becomes the newest enabled version; the
   old one stays enabled. Give the new value to the provider now; events it
   signed with either value are accepted meanwhile.
2. :func:`retire`: once the provider signs with the new value (and retries of
   older deliveries are over), disable every older version.

The writers are the adapters of :mod:`hookpress.backends.secrets`: Secret
Manager in the cloud (versions are disabled, never destroyed: re-enabling one
is the undo), the local secrets file for the local stack.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookpress.backends.secrets import SecretValues, SecretWriter

__all__ = ["Rotation", "add_version", "retire", "sync_local_file"]


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a step changed: the version added, the versions disabled, what is left enabled."""

    secret: str
    added: str | None = None
    retired: list[str] = field(default_factory=list)
    enabled: int = 0


def add_version(writer: SecretWriter, values: SecretValues, secret: str, value: str) -> Rotation:
    """Add ``value`` as the newest version of ``secret``; older versions stay enabled.

    Raises ValueError for an empty value or one that is already the newest.
    """
    value = value.strip()
    if not value:
        raise ValueError("the new secret value is empty")
    current = values.fetch(secret)
    if current and current[0] == value:
        raise ValueError(f"that value is already the newest version of {secret}")
    added = writer.add_version(secret, value)
    return Rotation(secret=secret, added=added, enabled=len(values.fetch(secret)))


def retire(writer: SecretWriter, values: SecretValues, secret: str) -> Rotation:
    """Disable every enabled version of ``secret`` but the newest."""
    if not values.fetch(secret):
        raise ValueError(f"{secret} has no enabled version: there is nothing to keep")
    retired = writer.disable_older(secret, keep=1)
    return Rotation(secret=secret, retired=retired, enabled=len(values.fetch(secret)))


def sync_local_file(path: Path, source: str, values: tuple[str, ...]) -> None:
    """Write a source's enabled values into ``local.json`` (atomically), so every tool
    reading the local stack's description signs with the newest one."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    sources = data.setdefault("sources", {})
    entry = sources.setdefault(source, {})
    entry["secrets"] = list(values)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
