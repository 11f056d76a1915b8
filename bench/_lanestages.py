"""Where a high event's delivery time goes, and who had the CPU meanwhile (bench/lanes.py).

A high event's delivery latency (``delivered_at`` − ``received_at``) is cut
into stages from what the pipeline already writes, all on this machine's clock:

- ``ingress``: ``received_at`` → the end of the ingress's request (its log line's
  ``time``): the raw bytes stored, the record created, the message published;
- ``push``: → the start of deliver's request (its log line's ``time`` minus
  ``duration_ms``): Pub/Sub's queue and push;
- ``deliver_backends``: → the post to WordPress (the record and the raw bytes read);
- ``wordpress``: the post itself (deliver's ``wordpress_ms``): PHP, MariaDB.

Outside the figure, for the record: ``ingress_answer``, the sender's request
from its start to the 202, and ``before_handler``, its start to ``received_at``
(the wait for one of the ingress's threads).

CPU shares are each process's user + system time over a window, in cores,
read from ``/proc`` for the processes this run started (its descendants),
named by what they run; ``other`` is the rest of the machine (other work).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import percentile
from hookpress.logs import read_records

__all__ = ["CpuWindow", "stage_breakdown"]

STAGES = (
    "ingress",
    "push",
    "deliver_backends",
    "wordpress",
    "total",
    "ingress_answer",
    "before_handler",
)

_TICK = os.sysconf("SC_CLK_TCK")
_KINDS = (
    ("--target ingress", "ingress"),
    ("--target deliver", "deliver"),
    ("pubsub-emulator", "pubsub emulator"),
    ("cloud-firestore-emulator", "firestore emulator"),
    ("fake-gcs-server", "gcs fake"),
    ("mariadbd", "mariadb"),
    ("php", "php (WordPress)"),
)


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, command line, CPU seconds so far)."""
    out: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _kind(pid: int, cmd: str, ours: set[int], ports: Mapping[int, str]) -> str:
    if pid == os.getpid():
        return "bench (senders)"
    if pid not in ours:
        return "other"
    for needle, name in _KINDS:
        if needle in cmd:
            if name == "deliver":
                for port, lane in ports.items():
                    if f"--port {port}" in cmd:
                        return f"deliver {lane}"
            return name
    return "other (this run)"


def _descendants(table: Mapping[int, tuple[int, str, float]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class CpuWindow:
    """CPU cores each kind of process used between :meth:`start` and :meth:`stop`."""

    def __init__(self, ports: Mapping[int, str]) -> None:
        self.ports = dict(ports)
        self._before: dict[int, tuple[int, str, float]] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._before, self._t0 = _processes(), time.monotonic()

    def stop(self) -> dict[str, Any]:
        after, seconds = _processes(), time.monotonic() - self._t0
        ours = _descendants(after, os.getpid()) | _descendants(self._before, os.getpid())
        cores: dict[str, float] = {}
        for pid, (_, cmd, cpu) in after.items():
            spent = cpu - (self._before[pid][2] if pid in self._before else 0.0)
            kind = _kind(pid, cmd, ours, self.ports)
            cores[kind] = cores.get(kind, 0.0) + spent / seconds
        ranked = sorted(cores.items(), key=lambda kv: -kv[1])
        return {
            "seconds": round(seconds, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cores": {k: round(v, 2) for k, v in ranked if v >= 0.005},
        }


def _log_spans(path: Path, outcome: str) -> dict[str, tuple[float, float, dict[str, Any]]]:
    """event_key -> (start, end, line) of each ``outcome`` line of a function's log."""
    spans: dict[str, tuple[float, float, dict[str, Any]]] = {}
    if not path.exists():
        return spans
    for line in read_records(path.read_text(errors="replace").splitlines()):
        key, took = line.get("event_key"), line.get("duration_ms")
        if line.get("outcome") != outcome or not key or not isinstance(took, int | float):
            continue
        end = datetime.fromisoformat(line["time"]).timestamp()
        spans[key] = (end - took / 1000, end, line)
    return spans


def stage_breakdown(
    logs: Path,
    lane: str,
    records: Iterable[Mapping[str, Any]],
    sent: Mapping[str, tuple[float, float]],
) -> dict[str, Any]:
    """p50/p95 of each stage over the delivered ``records`` (keys: ``event_key``)."""
    ingress = _log_spans(logs / "ingress.log", "accepted")
    deliver_log = "deliver.log" if lane == "normal" else f"deliver-{lane}.log"
    deliver = _log_spans(logs / deliver_log, "delivered")
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for record in records:
        key = record["event_key"]
        if key not in ingress or key not in deliver:
            continue
        received = record["received_at"].timestamp()
        delivered = record["delivered_at"].timestamp()
        ingress_end = ingress[key][1]
        deliver_start, _, line = deliver[key]
        wordpress = float(line.get("wordpress_ms") or 0.0) / 1000
        stages["ingress"].append(ingress_end - received)
        stages["push"].append(deliver_start - ingress_end)
        stages["deliver_backends"].append(delivered - wordpress - deliver_start)
        stages["wordpress"].append(wordpress)
        stages["total"].append(delivered - received)
        if key in sent:
            began, answered = sent[key]
            stages["ingress_answer"].append(answered - began)
            stages["before_handler"].append(received - began)
    return {
        name: {
            "n": len(values),
            "p50_s": round(percentile(values, 50), 3),
            "p95_s": round(percentile(values, 95), 3),
        }
        for name, values in stages.items()
        if values
    }
