"""``nox -s dev`` (``python -m hookpress.local.dev``): the whole pipeline on this machine.

What it does, in order:

1. runs ``scripts/bootstrap`` (as root it installs the missing Debian packages;
   otherwise it says what to install), and stops with its message if the
   machine is not ready;
2. starts a :class:`~hookpress.local.stack.LocalStack` (emulators, WordPress
   with the plugin, both functions, topics, subscriptions with retry and
   dead-letter, the bucket), one source per scheme named after the scheme;
3. writes ``.hookpress/local.json`` (mode 600: it holds throwaway secrets),
   the file ``hookpress`` and scripts read to reach the stack;
4. prints one ``hookpress send …`` line that works as printed, then one line
   per event as it moves (accepted → published → delivered / retry / failed /
   held / dead), read from the functions' JSON logs;
5. on Ctrl-C, SIGTERM or SIGHUP removes ``local.json`` and stops everything
   it started.

The stack runs in a *supervisor* process of its own session, and the process
you started only waits for it and forwards signals. That keeps the shutdown
whole even when the launcher does not wait for it: nox answers Ctrl-C by
killing its child after half a second, which would orphan every emulator and
server. The supervisor also watches a pipe from the launcher: if the launcher
dies, however it dies, the supervisor stops the stack.

Exit codes: 0 after a clean stop, 1 if the stack could not start, 2 for bad
arguments, 3 when the machine lacks what it needs (bootstrap said what).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from hookpress.logs import read_records

__all__ = ["LogTail", "format_event", "main"]

REPO = Path(__file__).resolve().parents[3]
DEFAULT_STATE = REPO / ".hookpress"
EXIT_START_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_READY = 3


# -- the live event log ---------------------------------------------------------------


def _short(key: Any) -> str:
    return str(key)[:12] if key else "-" * 12


def format_event(record: dict[str, Any]) -> str | None:
    """One line for a function's per-request log record; None for any other record."""
    component = record.get("component")
    outcome = record.get("outcome")
    message = str(record.get("message", ""))
    if component not in {"ingress", "deliver"} or not outcome:
        return None
    if not message.startswith(f"{component} {outcome}"):
        return None  # start-up and configuration records, not an event moving
    when = str(record.get("time", ""))[11:19] or datetime.now(UTC).strftime("%H:%M:%S")
    source = str(record.get("source") or "-")[:20]
    key = _short(record.get("event_key"))
    reason = record.get("reason")
    detail: str
    if component == "ingress":
        if outcome == "accepted":
            detail = "accepted → published"
        elif outcome == "duplicate":
            detail = "duplicate → re-published" if reason == "republished" else "duplicate"
        elif outcome == "challenge":
            detail = "slack url_verification answered"
        else:
            detail = f"rejected {record.get('http_status', '?')} {outcome}"
            if reason:
                detail += f" ({reason})"
    else:
        downstream = record.get("downstream_status")
        wordpress = f"WordPress {downstream}" if downstream else None
        attempt = record.get("delivery_attempt")
        if outcome == "delivered":
            post = record.get("wp_post_id")
            parts = [p for p in (wordpress, f"post {post}" if post else None) if p]
            detail = "delivered" + (f" ({', '.join(parts)})" if parts else "")
        elif outcome == "already_delivered":
            detail = "already delivered"
        elif outcome == "already_settled":
            detail = "dead letter for an event already " + str(reason or "?").removeprefix(
                "already_"
            )
        elif outcome == "held":
            detail = "held (deliveries are paused)"
        elif outcome == "dead":
            detail = "dead (delivery attempts exhausted)"
        elif outcome == "failed":
            detail = "failed: " + ", ".join(str(p) for p in (wordpress, reason) if p)
        elif outcome in {"retry", "breaker_open", "unavailable"}:
            detail = "retry: " + ", ".join(str(p) for p in (wordpress, reason) if p)
            if attempt:
                detail += f" (attempt {attempt})"
        else:
            detail = str(outcome) + (f" ({reason})" if reason else "")
    return f"{when}  {source:<20} {key}  {detail}"


@dataclass
class LogTail:
    """New complete lines of a growing file (which may not exist yet)."""

    path: Path
    _offset: int = 0
    _partial: bytes = b""

    def lines(self) -> list[str]:
        """Lines appended since the last call."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]


def event_lines(tails: Sequence[LogTail]) -> list[str]:
    """Formatted lines for every new per-request record in these logs."""
    out: list[str] = []
    for tail in tails:
        for record in read_records(tail.lines()):
            formatted = format_event(record)
            if formatted is not None:
                out.append(formatted)
    return out


# -- arguments ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hookpress.local.dev",
        description="Run the whole hookpress pipeline on this machine (what `nox -s dev` runs). "
        "Ctrl-C stops everything it started.",
        epilog="exit codes: 0 stopped cleanly, 1 could not start, 2 bad arguments, "
        "3 the machine lacks what it needs (scripts/bootstrap says what)",
    )
    parser.add_argument(
        "--source",
        action="append",
        metavar="NAME[=PROVIDER]",
        help="a source to configure (repeatable; default: one per provider, named after it)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        help="where local.json, logs and data go (default: .hookpress in the repository)",
    )
    parser.add_argument(
        "--no-bootstrap", action="store_true", help="do not run scripts/bootstrap first"
    )
    parser.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--watch-fd", type=int, help=argparse.SUPPRESS)
    return parser


def _sources(values: Sequence[str] | None) -> dict[str, Any]:
    from hookpress.local.stack import DEFAULT_SOURCES
    from hookpress.providers import PROVIDERS

    if not values:
        return dict(DEFAULT_SOURCES)
    sources: dict[str, Any] = {}
    for value in values:
        name, _, provider = value.partition("=")
        provider = provider or name
        if provider not in PROVIDERS:
            raise ValueError(
                f"unknown provider {provider!r}: one of {', '.join(sorted(PROVIDERS))}"
            )
        sources[name] = provider
    return sources


# -- the launcher ---------------------------------------------------------------------


def _bootstrap() -> int:
    script = REPO / "scripts" / "bootstrap"
    print("hookpress dev: checking the machine (scripts/bootstrap)", flush=True)
    try:
        done = subprocess.run([str(script)], cwd=REPO, check=False)  # noqa: S603 - our script
    except OSError as exc:
        print(f"hookpress dev: cannot run {script}: {exc}", file=sys.stderr, flush=True)
        return 1
    return done.returncode


def _running_pid(local_file: Path) -> int | None:
    try:
        data = json.loads(local_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = data.get("pid") if isinstance(data, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if not args.no_bootstrap and _bootstrap() != 0:
        print(
            "hookpress dev: this machine is missing what the local stack needs (see above); "
            "install it and run `nox -s dev` again.",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_NOT_READY
    local_file = args.state_dir / "local.json"
    running = _running_pid(local_file)
    if running is not None:
        print(
            f"hookpress dev: a local stack is already running (pid {running}, {local_file}); "
            "stop it first (Ctrl-C in its terminal, or kill it).",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_START_FAILED
    read_end, write_end = os.pipe()
    command = [
        sys.executable,
        "-m",
        "hookpress.local.dev",
        *argv,
        "--supervise",
        "--watch-fd",
        str(read_end),
    ]
    supervisor = subprocess.Popen(  # noqa: S603 - our own module
        command, pass_fds=(read_end,), start_new_session=True, stdin=subprocess.DEVNULL
    )
    os.close(read_end)
    forwarded = 0

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal forwarded
        forwarded += 1
        with contextlib.suppress(ProcessLookupError):
            supervisor.send_signal(signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        code = supervisor.wait()
    finally:
        os.close(write_end)
    return 0 if forwarded and code == 0 else code


# -- the supervisor -------------------------------------------------------------------


class _Stop(Exception):
    """A second signal while starting: give up the start-up at once."""


@dataclass
class _Signals:
    stop: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    starting: bool = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.stop.set()
        if self.starting and self.count == 1:
            print(
                "hookpress dev: stopping as soon as the start-up step running now ends "
                "(press Ctrl-C again to abandon it)",
                flush=True,
            )
        elif self.starting:
            raise _Stop


def _watch(fd: int, signals: _Signals) -> None:
    """Stop when the launcher's end of the pipe closes (the launcher is gone)."""
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    if not signals.stop.is_set():
        os.kill(os.getpid(), signal.SIGTERM)


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def send_command(local_file: Path, source: str) -> list[str]:
    """The ``hookpress send`` command line for this stack, runnable from the current directory."""
    script = Path(sys.executable).parent / "hookpress"
    if script.is_file() and os.access(script, os.X_OK):
        program = [_display(script)]
    else:
        program = [_display(Path(sys.executable)), "-m", "hookpress.cli"]
    return [*program, "send", source, "--example", "--local", _display(local_file)]


def _write_local_json(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


def _describe(stack: Any, local_file: Path) -> dict[str, Any]:
    content: dict[str, Any] = stack.local_json()
    content["pid"] = os.getpid()
    content["started_at"] = datetime.now(UTC).isoformat()
    content["local_file"] = str(local_file)
    return content


def _banner(content: dict[str, Any], send: list[str], print_line: Callable[[str], None]) -> None:
    wp = content["wordpress"]
    print_line("")
    print_line("hookpress dev: the pipeline is running.")
    print_line(f"  ingress    {content['ingress_url']}/<source>  ({', '.join(content['sources'])})")
    print_line(f"  WordPress  {wp['url']}/wp-admin/  user {wp['admin_user']}")
    print_line(f"             password {wp['admin_password']}")
    print_line(f"  tools read {content['local_file']}; logs in {content['logs']}")
    print_line("")
    print_line("Send a signed example event:")
    print_line("")
    print_line("  " + shlex.join(send))
    print_line("")
    print_line("Events as they move (Ctrl-C stops everything):")


def _supervise(args: argparse.Namespace) -> int:
    from hookpress.local.stack import LocalStack, StackOptions

    signals = _Signals()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signals.handle)
    if args.watch_fd is not None:
        threading.Thread(target=_watch, args=(args.watch_fd, signals), daemon=True).start()

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        sources = _sources(args.source)
    except ValueError as exc:
        say(f"hookpress dev: {exc}")
        return EXIT_USAGE
    state: Path = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    local_file = state / "local.json"
    workdir = state / "stack"
    # A fresh stack every time: the Pub/Sub emulator keeps subscriptions on disk,
    # and an old push subscription would push to a port nobody listens on.
    shutil.rmtree(workdir, ignore_errors=True)
    # The smoke source and a reconcile job every minute: `hookpress smoke` checks both.
    stack = LocalStack(
        workdir, StackOptions(sources=sources, smoke_source=True, reconcile_every_s=60.0)
    )
    say("hookpress dev: starting the emulators, WordPress and both functions (about 30 s)")
    started = time.monotonic()
    try:
        stack.start()
    except _Stop:
        say("hookpress dev: start-up abandoned; everything it started is stopped")
        return 0
    except Exception as exc:  # noqa: BLE001 - any start-up failure ends here, with its message
        say(f"hookpress dev: the stack did not start: {exc}")
        return EXIT_START_FAILED
    signals.starting = False
    try:
        if signals.stop.is_set():
            return 0
        content = _describe(stack, local_file)
        _write_local_json(local_file, content)
        preferred = "hmac-timestamp" if "hmac-timestamp" in sources else next(iter(sources))
        say(f"hookpress dev: ready in {time.monotonic() - started:.0f} s")
        _banner(content, send_command(local_file, preferred), say)
        logs = Path(content["logs"])
        tails = [LogTail(logs / "ingress.log"), LogTail(logs / "deliver.log")]
        while not signals.stop.is_set():
            for line in event_lines(tails):
                say(line)
            signals.stop.wait(0.25)
        for line in event_lines(tails):
            say(line)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # finish stopping whatever else arrives
        with contextlib.suppress(FileNotFoundError):
            local_file.unlink()
        say("hookpress dev: stopping (functions, WordPress, MariaDB, emulators)")
        stack.stop()
        say("hookpress dev: stopped; local.json removed")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the launcher, or (``--supervise``) the process that owns the stack."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.supervise:
        return _supervise(args)
    try:
        _sources(args.source)
    except ValueError as exc:
        print(f"hookpress dev: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _launch(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
