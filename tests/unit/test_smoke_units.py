"""``hookpress smoke``'s pure parts: the schedule period and how verdicts become an exit code."""

from __future__ import annotations

import pytest

from hookpress.ops.smoke import Check, SmokeReport
from hookpress.ops.target import cron_period_s


@pytest.mark.parametrize(
    ("schedule", "period"),
    [
        ("*/5 * * * *", 300.0),
        ("* * * * *", 60.0),
        ("7 * * * *", 3600.0),
        ("0 3 * * *", 86400.0),
        ("*/5 9-17 * * 1-5", None),
        ("every five minutes", None),
    ],
)
def test_cron_period(schedule: str, period: float | None) -> None:
    assert cron_period_s(schedule) == period


def _report(*checks: tuple[bool, bool]) -> SmokeReport:
    return SmokeReport(
        [Check(f"c{i}", ok, "", unavailable) for i, (ok, unavailable) in enumerate(checks)]
    )


def test_all_ok() -> None:
    report = _report((True, False), (True, False))
    assert report.ok
    assert not report.unavailable


def test_unavailable_only_when_nothing_failed_for_certain() -> None:
    assert _report((True, False), (False, True)).unavailable
    assert not _report((False, False), (False, True)).unavailable
    assert not _report((False, False), (False, True)).ok
