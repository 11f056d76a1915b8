"""The lanes case's stage breakdown: each stage from the log lines and records it reads."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench._lanestages import CpuWindow, stage_breakdown

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _line(path: Path, outcome: str, key: str, end: datetime, duration_ms: float, **extra: float):
    record = {"outcome": outcome, "event_key": key, "time": end.isoformat()}
    record.update(duration_ms=duration_ms, **extra)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def test_stages_add_up_to_the_delivery_latency(tmp_path: Path):
    at = T0.timestamp()
    # received 0.00; ingress answered 0.05; deliver 0.10 → 0.40, WordPress 0.12 → 0.32
    _line(tmp_path / "ingress.log", "accepted", "k", T0 + timedelta(seconds=0.05), 50)
    (tmp_path / "deliver-high.log").write_text("not json: the framework's own line\n")
    _line(
        tmp_path / "deliver-high.log", "delivered", "k", T0 + timedelta(seconds=0.40), 300,
        wordpress_ms=200,
    )  # fmt: skip
    record = {
        "event_key": "k",
        "received_at": T0,
        "delivered_at": T0 + timedelta(seconds=0.32),
    }
    stages = stage_breakdown(tmp_path, "high", [record], {"k": (at - 0.01, at + 0.06)})
    p50 = {name: value["p50_s"] for name, value in stages.items()}
    assert p50 == pytest.approx(
        {
            "ingress": 0.05,
            "push": 0.05,
            "deliver_backends": 0.02,
            "wordpress": 0.2,
            "total": 0.32,
            "ingress_answer": 0.07,
            "before_handler": 0.01,
        }
    )
    assert sum(p50[s] for s in ("ingress", "push", "deliver_backends", "wordpress")) == (
        pytest.approx(p50["total"])
    )


def test_an_event_without_both_log_lines_is_left_out(tmp_path: Path):
    _line(tmp_path / "ingress.log", "accepted", "k", T0, 10)
    record = {"event_key": "k", "received_at": T0, "delivered_at": T0}
    assert stage_breakdown(tmp_path, "normal", [record], {}) == {}


def test_the_cpu_window_counts_this_process(tmp_path: Path):
    window = CpuWindow({})
    window.start()
    started = time.process_time()
    while time.process_time() - started < 0.1:  # a tenth of a second of CPU, here
        sum(i * i for i in range(10_000))
    cores = window.stop()
    assert cores["seconds"] >= 0
    assert "bench (senders)" in cores["cores"]


def test_the_bulk_backlog_counts_events_received_and_not_yet_delivered():
    from bench.lanes import backlog_at

    def rec(got: float, done: float) -> dict[str, datetime]:
        return {
            "received_at": T0 + timedelta(seconds=got),
            "delivered_at": T0 + timedelta(seconds=done),
        }

    bulk = [rec(0, 1), rec(0.5, 3), rec(2, 2.5), rec(2, 5)]
    at = [T0 + timedelta(seconds=s) for s in (0, 0.9, 1, 2, 2.5, 4.9, 5)]
    # at 1.0 the first is delivered; at 2.5 the third; at 5.0 nothing is left
    assert backlog_at(bulk, at) == [1, 2, 1, 3, 2, 1, 0]
