"""What the chaos run, the fuzzer and the benchmark share: paths, result files, percentiles,
the emulators."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
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
    "work_directory",
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


#: the work directory (the emulators' data: fake-gcs-server's objects are files) goes in
#: RAM when this tmpfs has this much room (:func:`work_directory`)
RAM_DIR, RAM_DIR_ROOM = Path("/dev/shm"), 4 * 2**30  # noqa: S108 - mkdtemp makes a private directory in it


def work_directory(
    room: int = RAM_DIR_ROOM,
    ram: Path = RAM_DIR,
    mounts: Path = Path("/proc/mounts"),
    default: str | None = None,
) -> tuple[str | None, str]:
    """Where a run's work directory goes (None: the system's temporary directory), and the
    type of its file system: ``ram`` when it is a tmpfs with ``room`` bytes free (what is
    mounted where: ``mounts``; the temporary directory: ``default``, else the system's).

    The emulators keep their data there, and fake-gcs-server stores each object as files.
    On this machine's disk (ext4 on a virtual disk) that writing slowed every process,
    not only the stand-in: measured in run 32, the three calls 16 at a time ran at
    176-500 calls a second, ramping up over 20-25 s, with each emulator spending 0.9-3.8
    ms of CPU an event and the benchmark's own process 0.45-0.94 ms; with the directory
    in RAM, 836-1,040 from the first block, 0.42-0.70 ms an emulator and 0.33-0.46 ms.
    Google's storage is no disk of ours; the stand-in's disk was noise in every front's
    figures.
    """
    kinds = {}
    if mounts.exists():
        for line in mounts.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                kinds[fields[1]] = fields[2]
    if kinds.get(str(ram)) == "tmpfs":
        free = os.statvfs(ram)
        if free.f_bavail * free.f_frsize >= room:
            return str(ram), "tmpfs"
    temporary = Path(default or tempfile.gettempdir())
    mounted = max((m for m in kinds if temporary.is_relative_to(m)), key=len, default="/")
    return None, kinds.get(mounted, "unknown")
