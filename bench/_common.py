"""What the chaos run, the fuzzer and the benchmark share: paths, result files, percentiles,
the emulators."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = [
    "FUNCTIONS",
    "REPO",
    "RESULTS",
    "machine",
    "percentile",
    "summary",
    "write_json",
    "write_markdown",
]

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
RESULTS = REPO / "bench" / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on (no host names, no paths)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": platform.system(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), nearest-rank on the sorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and mean in milliseconds."""
    ms = [x * 1000 for x in latencies_s]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else 0.0,
    }


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, stable key order as given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_markdown(path: Path, text: str) -> None:
    """A Markdown file, ending with one newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")
