"""The pause switch: the Firestore document ``control/delivery`` (``{"paused": bool}``).

While it says paused, the deliver function marks every event it receives
``held`` (acked, nothing sent to WordPress). Each deliver instance caches the
switch for ``HOOKPRESS_CONTROL_TTL_S`` (5 s by default), so a change takes that
long to reach every instance: resuming waits that long before it republishes
the held events, or they would be held again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookpress.backends.firestore import EventRecords

__all__ = ["ControlState", "read_control", "set_paused"]


def _document() -> str:
    # Imported here: the deliver package pulls in its HTTP client, which a caller
    # of this module (a function archive without it) may not have.
    from hookpress.deliver._pipeline import CONTROL_DOCUMENT

    return CONTROL_DOCUMENT


@dataclass(frozen=True, slots=True)
class ControlState:
    """The switch as stored, with who changed it last, when and why."""

    paused: bool
    reason: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "paused": self.paused,
            "reason": self.reason,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "changed_by": self.changed_by,
        }


def read_control(records: EventRecords, collection: str) -> ControlState:
    """The current switch (not paused when the document does not exist)."""
    snapshot = records.get(_document(), collection=collection)
    data = snapshot.data if snapshot is not None else {}
    changed = data.get("changed_at")
    reason = data.get("reason")
    by = data.get("changed_by")
    return ControlState(
        paused=bool(data.get("paused")),
        reason=reason if isinstance(reason, str) else None,
        changed_at=changed if isinstance(changed, datetime) else None,
        changed_by=by if isinstance(by, str) else None,
    )


def set_paused(
    records: EventRecords,
    collection: str,
    *,
    paused: bool,
    reason: str | None,
    by: str | None,
    now: float,
) -> ControlState:
    """Set the switch; return what it now says."""
    state = ControlState(
        paused=paused,
        reason=reason,
        changed_at=datetime.fromtimestamp(now, UTC),
        changed_by=by,
    )
    records.set(
        _document(),
        {
            "paused": state.paused,
            "reason": state.reason,
            "changed_at": state.changed_at,
            "changed_by": state.changed_by,
        },
        collection=collection,
    )
    return state
