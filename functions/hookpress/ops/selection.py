"""Choosing records: times, days and rates as operators type them, and the queries.

Queries use only indexes the Pulumi program creates: a status with a time
window uses the composite index (status, received_at); a window alone uses
the automatic single-field index on ``received_at``. Records come back oldest
first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError
from hookpress.events import Status

if TYPE_CHECKING:
    from hookpress.backends.firestore import EventRecords, Snapshot

__all__ = [
    "STATUSES",
    "Selection",
    "parse_day",
    "parse_rate",
    "parse_statuses",
    "parse_when",
    "select",
]

STATUSES = tuple(s.value for s in Status)

_RELATIVE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|min|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RATE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?:/\s*(?P<unit>s|sec|second|m|min|minute|h|hour))?$")
_RATE_UNITS = {
    None: 1,
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}


def parse_when(text: str, now: datetime) -> datetime:
    """An instant: ``now``, a duration ago (``90s``, ``15m``, ``2h``, ``1d``, ``1w``),
    a date (``2026-01-02``, midnight UTC) or an ISO 8601 time (UTC unless it says).

    Raises ValueError with a sentence for anything else.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _RELATIVE.match(value.lower())
    if match:
        return now - timedelta(seconds=float(match["n"]) * _UNITS[match["unit"]])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use an ISO date or time (2026-01-02, "
            "2026-01-02T03:04:05Z) or a duration ago (30m, 2h, 1d)."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_day(text: str, today: date) -> date:
    """A day: ``today``, ``yesterday`` or ``YYYY-MM-DD``."""
    value = text.strip().lower()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a day: use YYYY-MM-DD, today or yesterday.") from None


def parse_rate(text: str) -> float:
    """Events per second from ``20/s``, ``20``, ``600/m`` or ``3600/h``; must be positive."""
    match = _RATE.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a rate: use N/s, N/m or N/h, e.g. 20/s.")
    per_second = float(match["n"]) / _RATE_UNITS[match["unit"]]
    if per_second <= 0:
        raise ValueError(f"{text!r} is not a positive rate.")
    return per_second


def parse_statuses(text: str) -> tuple[str, ...]:
    """``held,failed`` → ("held", "failed"); every name must be a status."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in STATUSES]
    if not names or unknown:
        raise ValueError(
            f"unknown status {', '.join(unknown) or text!r}: use one or more of "
            f"{', '.join(STATUSES)}, separated by commas."
        )
    return names


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records: any of ``statuses`` (all if empty), received in ``[since, until)``,
    from any of ``sources`` (all if empty), at most ``limit``."""

    statuses: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    sources: Sequence[str] = ()
    limit: int | None = None

    def matches(self, snapshot: Snapshot) -> bool:
        """Whether a record read some other way belongs to this selection."""
        data = snapshot.data
        if self.statuses and data.get("status") not in self.statuses:
            return False
        if self.sources and data.get("source") not in self.sources:
            return False
        received = data.get("received_at")
        if self.since is not None or self.until is not None:
            if not isinstance(received, datetime):
                return False
            if self.since is not None and received < self.since:
                return False
            if self.until is not None and received >= self.until:
                return False
        return True


def select(records: EventRecords, selection: Selection) -> Iterator[Snapshot]:
    """The selected records, oldest first per status; BackendError if Firestore fails."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud.firestore_v1.base_query import FieldFilter

    from hookpress.backends.firestore import Snapshot

    remaining = selection.limit
    for status in selection.statuses or (None,):
        query: Any = records.collection()
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status))
        if selection.since is not None:
            query = query.where(filter=FieldFilter("received_at", ">=", selection.since))
        if selection.until is not None:
            query = query.where(filter=FieldFilter("received_at", "<", selection.until))
        query = query.order_by("received_at")
        try:
            for doc in query.stream():
                snapshot = Snapshot(
                    key=doc.id, data=doc.to_dict() or {}, update_time=doc.update_time
                )
                if not selection.matches(snapshot):
                    continue
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield snapshot
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError) as exc:
            raise BackendError("firestore", type(exc).__name__) from None
