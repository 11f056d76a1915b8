"""Structured logs in Cloud Logging's JSON format, one line per record on stdout.

Cloud Run turns each stdout line that is a JSON object into a LogEntry:
``severity`` and ``message`` are lifted, ``logging.googleapis.com/trace``
links the entry to the request's trace, the rest lands in ``jsonPayload``.

Only what is passed as a field is logged. Callers pass identifiers (the
event key, the source name) and reasons, never a secret, a signature, a
payload body or a raw header value. JSON encoding escapes CR/LF, so no value
can split a record into two lines.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["Logger", "read_records", "trace_field"]

_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_MAX_FIELD = 256


def trace_field(project: str, headers: Mapping[str, str]) -> str | None:
    """The ``projects/P/traces/T`` value from X-Cloud-Trace-Context or traceparent."""
    trace_id: str | None = None
    cloud = headers.get("x-cloud-trace-context")
    if cloud:
        trace_id = cloud.split("/", 1)[0]
    else:
        parent = headers.get("traceparent")
        if parent:
            parts = parent.split("-")
            trace_id = parts[1] if len(parts) >= 2 else None
    if trace_id is None or not _TRACE_ID.match(trace_id):
        return None  # never echo an unrecognised header value into the log
    return f"projects/{project}/traces/{trace_id.lower()}"


def read_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records among a log's lines: each line that is a JSON object (the rest skipped)."""
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


# Built once: json.dumps with any argument builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)
_second: tuple[int, str] = (0, "")  # the last whole second and its text


def _now() -> str:
    """``datetime.now(UTC).isoformat(timespec="microseconds")``, the date and time of
    day formatted once a second (per line, that formatting was the log line's dearest
    part: bench/RESULTS.md, "True CPU at concurrency 1")."""
    global _second
    now = time.time()
    whole = int(now)
    second, text = _second
    if whole != second:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{int((now - whole) * 1_000_000):06d}+00:00"


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_FIELD:
        return value[:_MAX_FIELD] + "…"
    return value


class Logger:
    """Writes one JSON object per line. Thread-safe; cheap enough for the hot path."""

    def __init__(self, component: str, stream: TextIO | None = None) -> None:
        self.component = component
        self._stream = stream
        self._lock = threading.Lock()

    def log(self, severity: str, message: str, **fields: Any) -> None:
        """Write a record; ``None`` fields are left out."""
        record: dict[str, Any] = {
            "severity": severity,
            "message": message,
            "component": self.component,
            "time": _now(),
        }
        trace = fields.pop("trace", None)
        if trace:
            record["logging.googleapis.com/trace"] = trace
        record.update({k: _clip(v) for k, v in fields.items() if v is not None})
        line = _ENCODER.encode(record) + "\n"
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line)
            stream.flush()

    def info(self, message: str, **fields: Any) -> None:
        """An INFO record."""
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        """A WARNING record."""
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        """An ERROR record (alert-worthy)."""
        self.log("ERROR", message, **fields)

    def critical(self, message: str, **fields: Any) -> None:
        """A CRITICAL record (the function cannot work as configured)."""
        self.log("CRITICAL", message, **fields)
