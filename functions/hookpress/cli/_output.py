"""Rendering: results on stdout (tables, or JSON with ``--json``), everything else on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, Any, TypeAlias

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from hookpress.ops.replay import Action, Item, Report

__all__ = ["JSON", "Output", "ReplayProgress", "jsonable"]

#: what ``json.dumps`` writes
JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"

_PIPE_WIDTH = 200

_RECORD_FIELDS = (
    "source",
    "scheme",
    "provider_event_id",
    "event_type",
    "status",
    "attempts",
    "last_error",
    "downstream_status",
    "wp_post_id",
    "received_at",
    "published_at",
    "delivered_at",
    "updated_at",
    "expire_at",
    "raw_uri",
    "body_sha256",
)

_ACTION_STYLE = {
    Action.REPLAYED: "green",
    Action.REBUILT: "green",
    Action.WOULD_REPLAY: "cyan",
    Action.WOULD_REBUILD: "cyan",
    Action.DELIVERED: "dim",
    Action.IN_FLIGHT: "dim",
    Action.COPY: "dim",
    Action.PENDING: "yellow",
    Action.MISSING: "red",
    Action.ERROR: "red",
}

_STATUS_STYLE = {
    "delivered": "green",
    "published": "cyan",
    "received": "cyan",
    "held": "yellow",
    "failed": "red",
    "dead": "red",
}


def jsonable(value: object) -> JSON:
    """Firestore values as JSON: times in ISO 8601, bytes as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _cell(value: Any, *, full_time: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat() if full_time else value.strftime("%Y-%m-%d %H:%M:%S")
    return escape(str(value))


class Output:
    """Where a command writes. ``json_mode`` keeps stdout for one JSON document."""

    def __init__(
        self, *, json_mode: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None
    ) -> None:
        self.json_mode = json_mode
        self.out = Console(file=stdout or sys.stdout, soft_wrap=True, highlight=False)
        self.err = Console(file=stderr or sys.stderr, soft_wrap=True, highlight=False)
        for console in (self.out, self.err):
            if not console.is_terminal:
                # Piped or captured: never cut an event key to fit 80 columns.
                console.width = max(console.width, _PIPE_WIDTH)

    # -- text ------------------------------------------------------------------------

    def result(self, text: str) -> None:
        """A result line on stdout (rich markup allowed; escape data)."""
        if not self.json_mode:
            self.out.print(text)

    def plain(self, text: str) -> None:
        """Exact text on stdout (no markup, no wrapping): values a script captures."""
        self.out.file.write(text + "\n")
        self.out.file.flush()

    def note(self, text: str) -> None:
        """A message for the operator on stderr."""
        self.err.print(text)

    def error(self, message: str, hint: str | None = None) -> None:
        """``hookpress: error: …`` on stderr, and what to do about it."""
        self.err.print(f"[bold red]hookpress: error:[/] {escape(message)}")
        if hint:
            self.err.print(f"  {escape(hint)}")

    def json(self, data: object) -> None:
        """One JSON document on stdout."""
        self.out.file.write(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")
        self.out.file.flush()

    # -- records ---------------------------------------------------------------------

    def record(self, key: str, data: Mapping[str, Any]) -> None:
        """One event record as a two-column table."""
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("event_key", key)
        for name in _RECORD_FIELDS:
            if name in data:
                value = data[name]
                style = _STATUS_STYLE.get(str(value), "") if name == "status" else ""
                text = _cell(value, full_time=True)
                table.add_row(name, f"[{style}]{text}[/]" if style else text)
        for name in sorted(set(data) - set(_RECORD_FIELDS)):
            if name != "downstream_body":
                table.add_row(name, _cell(data[name], full_time=True))
        self.out.print(table)

    def records(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Records as one table, a row each."""
        table = Table(box=None, pad_edge=False)
        for column in ("received (UTC)", "source", "status", "attempts", "http"):
            table.add_column(column, no_wrap=True)
        table.add_column("event_key", no_wrap=True, min_width=64)
        for key, data in rows:
            status = str(data.get("status", "-"))
            style = _STATUS_STYLE.get(status, "")
            table.add_row(
                _cell(data.get("received_at")),
                _cell(data.get("source")),
                f"[{style}]{escape(status)}[/]" if style else escape(status),
                _cell(data.get("attempts")),
                _cell(data.get("downstream_status")),
                key,
            )
        self.out.print(table)

    # -- replay ----------------------------------------------------------------------

    def summary(self, report: Report, *, title: str) -> None:
        """Counts per action, then every event that still needs attention."""
        counts = report.counts
        table = Table(title=title, box=None, pad_edge=False, title_justify="left")
        table.add_column("outcome")
        table.add_column("events", justify="right")
        for action in Action:
            if counts.get(action):
                style = _ACTION_STYLE[action]
                table.add_row(f"[{style}]{action.value}[/]", str(counts[action]))
        if not counts:
            table.add_row("[dim]nothing selected[/]", "0")
        self.err.print(table)
        problems = [i for i in report.items if not i.action.ok]
        for item in problems[:20]:
            self.err.print(
                f"  [red]{item.action.value}[/] {item.key} {escape(item.detail or '')}".rstrip()
            )
        if len(problems) > 20:
            self.err.print(f"  … and {len(problems) - 20} more (--json lists them all)")
        if report.dry_run:
            self.err.print("[cyan]dry run: nothing was published or acknowledged[/]")
        if report.aborted:
            self.err.print(f"[red]stopped early: {escape(report.aborted)}[/]")


class ReplayProgress:
    """A rich progress bar on stderr with running counts; silent when stderr is not a TTY."""

    def __init__(self, output: Output, description: str) -> None:
        self._enabled = output.err.is_terminal and not output.json_mode
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=output.err,
            transient=False,
            disable=not self._enabled,
        )
        self._task = self._progress.add_task(description, total=None, counts="")
        self._counts: dict[str, int] = {}

    def __enter__(self) -> ReplayProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def total(self, count: int | None) -> None:
        """How many items to expect."""
        self._progress.update(self._task, total=count)

    def advance(self, item: Item) -> None:
        """One more item decided."""
        self._counts[item.action.value] = self._counts.get(item.action.value, 0) + 1
        text = " ".join(f"{k} {v}" for k, v in sorted(self._counts.items()))
        self._progress.update(self._task, advance=1, counts=text)
