"""What a command runs in, and the helpers more than one command group calls.

:class:`Context` holds the parsed arguments, the output and the stack (resolved
on first use). The rest turn what the operator typed into what ``hookpress.ops``
takes, raising :class:`~hookpress.cli._exit.CliError` with the exit code a
mistake maps to.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._output import Output
from hookpress.ops.selection import Selection, parse_statuses, parse_when
from hookpress.ops.target import Overrides, Source, Target, TargetError, resolve

__all__ = [
    "EVENT_KEY",
    "Context",
    "newest_secret",
    "parse_selection",
    "parsed",
    "provider_of",
    "source_named",
    "usage",
]

#: what an event key looks like (sha256, hex)
EVENT_KEY = re.compile(r"^[0-9a-f]{64}$")

_T = TypeVar("_T")


@dataclass
class Context:
    """The parsed arguments, where to write, and the stack (resolved on first use)."""

    args: argparse.Namespace
    out: Output
    env: Mapping[str, str]
    cwd: Path
    clock: Callable[[], float] = time.time
    _target: Target | None = field(default=None, repr=False)

    def _text(self, name: str) -> str | None:
        """A stack option, wherever it was given (None if nowhere)."""
        value = getattr(self.args, name, None)
        return None if value is None else str(value)

    def _path(self, name: str) -> Path | None:
        value = getattr(self.args, name, None)
        return None if value is None else Path(value)

    def use(self, target: Target) -> None:
        """Operate on this stack instead of resolving one (scripts and tests that hold it)."""
        target.activate()
        self._target = target

    def target(self) -> Target:
        """The stack, resolved and activated once."""
        if self._target is None:
            overrides = Overrides(
                project=self._text("project"),
                bucket=self._text("bucket"),
                database=self._text("database"),
                ingress_url=self._text("ingress_url"),
                events_topic=self._text("events_topic"),
                dead_subscription=self._text("dead_subscription"),
            )
            self._target = resolve(
                local=self._path("local"),
                stack_outputs=self._path("stack_outputs"),
                overrides=overrides,
                env=self.env,
                cwd=self.cwd,
            )
            self._target.activate()
        return self._target

    def now(self) -> datetime:
        """The current time, UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def unavailable_hint(self) -> str | None:
        """What to try when a backend of the stack (or its ingress) did not answer."""
        if self._target is not None and self._target.kind == "local":
            return "is the local stack running? start it with `nox -s dev`"
        if self._target is not None:
            return "check your credentials (gcloud auth application-default login) and try again"
        return None


def usage(message: str) -> CliError:
    """A usage error (exit 2) to raise."""
    return CliError(message, ExitCode.USAGE)


def parsed(parse: Callable[[], _T]) -> _T:
    """What ``parse`` returns; its ValueError becomes a usage error."""
    try:
        return parse()
    except ValueError as exc:
        raise usage(str(exc)) from None


def source_named(target: Target, name: str) -> Source:
    """The stack's source called ``name`` (exit 3 if there is none)."""
    try:
        return target.source(name)
    except TargetError as exc:
        if target.kind == "cloud" and target.ingress_url:
            # A source the outputs do not list: trust the operator, the ingress will say.
            return Source(name, None, f"hookpress-source-{name}", f"{target.ingress_url}/{name}")
        raise CliError(str(exc), ExitCode.NOT_FOUND) from None


def provider_of(ctx: Context, source: Source) -> str:
    """The source's provider (a scheme name is the provider of the same name)."""
    from hookpress.providers import PROVIDERS

    name: str | None = getattr(ctx.args, "scheme", None) or source.provider or source.scheme
    if name is None:
        raise CliError(
            f"the provider of source {source.name!r} is unknown on the {ctx.target().describe()}",
            ExitCode.CONFIG,
            "pass --provider, or set HOOKPRESS_SOURCES as the ingress has it",
        )
    if name not in PROVIDERS:
        raise usage(f"unknown provider {name!r}: one of {', '.join(sorted(PROVIDERS))}")
    return name


def newest_secret(target: Target, source: Source) -> str | None:
    """The newest enabled value of the source's secret, where this tool can read it."""
    values: tuple[str, ...] = ()
    if target.kind == "cloud" or target.secrets.backend == "file":
        values = target.secret_values().fetch(source.secret)
    values = values or source.inline_secrets
    return values[0] if values else None


def parse_selection(ctx: Context, *, since_default: str | None, limit: int | None) -> Selection:
    """The records ``--status``, ``--since``, ``--until`` and ``--source`` select."""
    args = ctx.args
    now = ctx.now()
    since_text = args.since or since_default
    return Selection(
        statuses=parsed(lambda: parse_statuses(args.status)) if args.status else (),
        since=parsed(lambda: parse_when(since_text, now)) if since_text else None,
        until=parsed(lambda: parse_when(args.until, now)) if args.until else None,
        sources=tuple(args.source or ()),
        limit=limit,
    )
