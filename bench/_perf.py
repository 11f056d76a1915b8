"""True CPU at concurrency 1: ``perf`` on the ingress as deployed, beside the three calls served.

py-spy (:mod:`bench._profile`) samples the thread that holds the GIL. At c = 1 it saw
about half of what the ingress's process spent: the rest is the kernel's side of every
socket call and thread wake-up, and C code run without the GIL. ``perf record``
samples the CPU itself. Python 3.12, the cloud runtime, names its functions to perf
(``PYTHONPERFSUPPORT=1``: https://docs.python.org/3.12/howto/perf_profiling.html), so
each sample here is charged to the innermost Python function on its stack, with the
C and kernel code beneath it: a function's own CPU, cold caches and system calls
included. A function's callers are not added up (perf cannot unwind through the
interpreter's trampolines reliably), so this is self time only.

Both fronts run from the ingress's deployed archive in the virtualenv of its
requirements.txt (:func:`bench.run.deployed`): the ingress, and
``bench/served_calls.py`` (the three backend calls served by the same server, with
none of the ingress's own work). What the ingress spends beyond the served calls,
function by function, is its own work as the machine runs it.

``nox -s bench -- --perf`` writes ``<out>/profile/perf-c1.{md,json}``. It needs
``perf`` (Debian: ``linux-perf``) and root (or ``kernel.perf_event_paranoid`` ≤ 1).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["area", "function_name", "leaf_functions", "parse_script", "perf_script", "recorded"]

RATE_HZ = 1000
#: a frame of the interpreter's perf map: ``py::<qualified name>:<file>``
_PY_FRAME = re.compile(r"^py::(?P<name>.*?):(?P<file>.*)$")
#: the part of a file's path that says where it is from (no machine path survives): a
#: package's from its folder in site-packages, the standard library's from its own
_FROM = (
    re.compile(r".*/site-packages/"),
    re.compile(r".*/lib/python3\.\d+/"),
    re.compile(r".*/archives/\w+/"),
    re.compile(r".*/bench/"),
)


def perf() -> str:
    """The perf executable."""
    found = shutil.which("perf")
    if found is None:
        raise RuntimeError("perf is not installed (Debian: apt-get install linux-perf)")
    return found


@contextlib.contextmanager
def recorded(pids: Sequence[int], data: Path) -> Iterator[None]:
    """``perf record`` on these processes (all their threads) while the block runs."""
    command = [perf(), "record", "-F", str(RATE_HZ), "--call-graph", "dwarf,32768"]
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [*command, "-o", str(data), "-p", ",".join(map(str, pids))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)


def perf_script(data: Path) -> list[list[str]]:
    """Each sample's stack, innermost frame first, as symbol names."""
    text = subprocess.run(  # noqa: S603 - fixed argv
        [perf(), "script", "-i", str(data), "-F", "tid,ip,sym"],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    ).stdout
    return parse_script(text)


def parse_script(text: str) -> list[list[str]]:
    """``perf script -F tid,ip,sym``'s text as stacks: a sample is its thread id on a line
    (padded with spaces), then a line per frame (a tab, the address, the symbol), then a
    blank line."""
    samples: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            if current is not None:
                samples.append(current)
            current = None
        elif not line.startswith("\t"):
            current = []  # a sample's header line: its thread id, right-aligned
        elif current is not None:
            parts = line.strip().split(" ", 1)
            current.append(parts[1] if len(parts) > 1 else "?")
    if current is not None:
        samples.append(current)
    return samples


def function_name(frame: str) -> str | None:
    """``name (file)`` of a Python frame (the file from its package or the standard
    library on), or None for a native frame."""
    match = _PY_FRAME.match(frame)
    if match is None:
        return None
    file = match["file"]
    for prefix in _FROM:
        if prefix.match(file):
            file = prefix.sub("", file, count=1)
            break
    return f"{match['name']} ({file})"


def leaf_functions(samples: list[list[str]]) -> Counter[str]:
    """Samples per innermost Python function (``(no Python frame)`` when there is none)."""
    counts: Counter[str] = Counter()
    for stack in samples:
        leaf = next((name for name in map(function_name, stack) if name is not None), None)
        counts[leaf or "(no Python frame)"] += 1
    return counts


def area(function: str) -> str:
    """Where a function lives: hookpress, json, gunicorn, werkzeug, flask, …"""
    if function.startswith("(no Python"):
        return "native only"
    file = function.rsplit("(", 1)[-1].rstrip(")")
    if file.startswith(("hookpress/", "main.py")):
        return "hookpress"
    if file.startswith("<"):
        return "generated code (dataclass __init__, …)" if file == "<string>" else file
    return re.split(r"[/.]", file, maxsplit=1)[0]


def compare(
    fronts: dict[str, Callable[[Path], int]], out_dir: Path, workdir: Path
) -> dict[str, Any]:
    """Record each front (``run(data) -> requests``), then µs per request by function."""
    per_request: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for name, run in fronts.items():
        data = workdir / f"{name}.perf.data"
        requests = run(data)
        counts = leaf_functions(perf_script(data))
        scale = 1e6 / RATE_HZ / requests  # one sample is 1/RATE_HZ s of CPU
        per_request[name] = {f: round(n * scale, 1) for f, n in counts.items()}
        totals[name] = round(sum(counts.values()) * scale, 1)
        data.unlink(missing_ok=True)
    result = {"rate_hz": RATE_HZ, "total_us_per_request": totals, "us_per_request": per_request}
    out_dir.mkdir(parents=True, exist_ok=True)
    from bench._common import write_json, write_markdown

    write_json(out_dir / "perf-c1.json", result)
    write_markdown(out_dir / "perf-c1.md", markdown(result))
    return result


def markdown(result: dict[str, Any], top: int = 30) -> str:
    """The tables of perf-c1.md: by area, then the functions the ingress spends more on."""
    ingress = result["us_per_request"]["ingress"]
    served = result["us_per_request"]["served_calls"]
    totals = result["total_us_per_request"]
    lines = [
        "# True CPU per request at concurrency 1 (`nox -s bench -- --perf`)",
        "",
        "`perf record` at "
        f"{result['rate_hz']} Hz on the ingress as deployed (its archive, Python 3.12, "
        "its requirements.txt) and on the three calls served by the same server, one "
        "request at a time; each sample charged to its innermost Python function with "
        "the native and kernel code beneath it (bench/_perf.py). µs of CPU per request.",
        "",
        f"Total: ingress {totals['ingress']}, the three calls served {totals['served_calls']}.",
        "",
        "| area | ingress | served calls | difference |",
        "|---|---|---|---|",
    ]
    areas: dict[str, list[float]] = {}
    for column, values in enumerate((ingress, served)):
        for function, us in values.items():
            areas.setdefault(area(function), [0.0, 0.0])[column] += us
    for name, (a, b) in sorted(areas.items(), key=lambda kv: -kv[1][0])[:15]:
        lines.append(f"| {name} | {a:.0f} | {b:.0f} | {a - b:+.0f} |")
    lines += [
        "",
        "Functions the ingress spends the most more on than the served calls:",
        "",
        "| function | ingress | served calls | difference |",
        "|---|---|---|---|",
    ]
    names = set(ingress) | set(served)
    for function in sorted(names, key=lambda f: -(ingress.get(f, 0) - served.get(f, 0)))[:top]:
        a, b = ingress.get(function, 0.0), served.get(function, 0.0)
        lines.append(f"| `{function}` | {a:.0f} | {b:.0f} | {a - b:+.0f} |")
    return "\n".join(lines) + "\n"
