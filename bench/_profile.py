"""Where a server's time goes under load: py-spy flame graphs and a table of self time.

Two py-spy samplers attach to the same server while a load runs: one writes
the flame graph (SVG, for reading by eye), the other the same stacks as text,
from which :func:`summarize` computes each function's *self* time and sums it
by area (our code, the HTTP server, the HTTP client, the Google client
libraries, threads and locks, …).

py-spy samples with ``--gil``: only the thread holding the GIL, i.e. where
the interpreter spends its CPU. (Its default "running threads" mode counted
threads blocked in socket reads and condition waits as running on this
loaded 2-core machine: half the samples at concurrency 64 were waits.) Time
spent without the GIL (kernel send/recv, the gRPC core's own threads) is not
in these samples; the CPU ms per request beside them is the whole process's.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["AREAS", "area_of", "ours", "py_spy", "sampled", "summarize"]

RATE_HZ = 200

#: (area, pattern on "function (file:line)"), first match wins
AREAS: tuple[tuple[str, str], ...] = (
    ("hookpress", r"\(hookpress/"),
    ("hookpress", r"\(main\.py:"),
    # py-spy names files from their package: api_core/…, firestore_v1/…, storage/…, auth/…
    (
        "google client libraries (api_core, grpc, proto, auth)",
        r"\((google|api_core|cloud|firestore_v1|firestore|storage|pubsub_v1|pubsub|auth|oauth2"
        r"|grpc|proto|protobuf|_media)/",
    ),
    ("requests / urllib3", r"\((requests|urllib3)/"),
    ("httpx", r"\((httpx|httpcore|h11|anyio)/"),
    ("gunicorn", r"\(gunicorn/"),
    ("uvicorn / starlette / asyncio", r"\((uvicorn|uvicorn_worker|starlette|asyncio)/"),
    ("flask / werkzeug / functions-framework", r"\((flask|werkzeug|functions_framework)/"),
    ("threads, locks, futures", r"\((threading|concurrent/futures|queue)\.py|\(concurrent/"),
    ("http.client / socket / ssl", r"\((http/client|socket|ssl|selectors)\.py"),
    ("json", r"\(json/"),
    ("logging", r"\(logging/"),
)


def ours(frame: str) -> bool:
    """Whether a stack passes through our code: a request's own work (``keep`` of summarize)."""
    return "(hookpress/" in frame or "(main.py" in frame


def area_of(frame: str) -> str:
    """The area a frame belongs to (``other`` when none matches)."""
    for area, pattern in AREAS:
        if re.search(pattern, frame):
            return area
    return "other (stdlib, interpreter)"


def py_spy() -> str:
    """The py-spy executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


@contextlib.contextmanager
def sampled(pid: int, svg: Path, folded: Path) -> Iterator[None]:
    """Sample ``pid`` and its children while the block runs; write the flame graph and stacks."""
    common = ["--pid", str(pid), "--subprocesses", "--rate", str(RATE_HZ), "--nonblocking", "--gil"]
    procs = [
        subprocess.Popen(  # noqa: S603 - fixed argv
            [py_spy(), "record", *common, "--format", fmt, "-o", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, path in (("flamegraph", svg), ("raw", folded))
    ]
    time.sleep(1.0)  # both samplers attached
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in procs:
            proc.wait(timeout=60)
        from bench._common import REPO

        for path in (svg, folded):
            if path.exists():
                scrub(path, REPO)


def scrub(path: Path, repo: Path) -> None:
    """Take this machine's paths out of a py-spy output (it embeds command lines).

    The repository becomes ``[repo]``, interpreters ``[python]``, temporary
    folders ``[tmp]``, the home folder ``~`` (brackets: the SVG is XML).
    """
    text = path.read_text(errors="replace")
    for prefix, name in sorted(
        {
            str(repo): "[repo]",
            sys.prefix: "[python]",
            sys.base_prefix: "[python]",
            str(Path.home()): "~",
        }.items(),
        key=lambda kv: -len(kv[0]),
    ):
        text = text.replace(prefix, name)
    text = re.sub(r"/tmp/[^/\s\"'<>]*", "[tmp]", text)  # noqa: S108 - a pattern, not a file
    # A frame py-spy read while the memory changed under it can hold control characters,
    # which XML forbids: the SVG would not open.
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "?", text)
    path.write_text(text)


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def summarize(
    folded: Path, top: int = 25, keep: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """Self time by area and by function, in % of the samples of running threads."""
    by_area: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    # One sample per "\n": splitlines() would also break at the control characters a
    # frame read mid-change can hold (see the SVG's clean-up above).
    for line in folded.read_text().split("\n"):
        if not line.strip():
            continue
        frames, count = _frames(line)
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames or (keep is not None and not any(keep(f) for f in frames)):
            continue
        total += count
        leaf = frames[-1]
        by_area[area_of(leaf)] += count
        by_function[leaf] += count
        for frame in set(frames):
            if "(hookpress/" in frame:
                inclusive[frame] += count

    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "self_by_area": {k: pct(v) for k, v in by_area.most_common()},
        "self_by_function": {k: pct(v) for k, v in by_function.most_common(top)},
        "inclusive_hookpress": {k: pct(v) for k, v in inclusive.most_common(top)},
    }
