"""The processes local tools start, and how they wait for them: one module for all.

The local stack, the benchmarks and the end-to-end tests start real programs
(the gcloud emulators, fake-gcs-server, functions-framework under gunicorn,
MariaDB, ``php -S``). Each is started here by :func:`spawn` as the leader of a
process group of its own, so that :func:`stop` reaches everything it spawned
(the gcloud wrapper's JVM, gunicorn's workers, the PHP server's workers) and
nothing outlives a stop. The waits poll: a free port, a port that accepts
connections, a URL that answers 2xx, a unix socket, any condition; each gives
up early when the process it waits for has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

__all__ = [
    "ProcessError",
    "ProcessExited",
    "WaitTimeout",
    "free_port",
    "spawn",
    "stop",
    "wait_for",
    "wait_http",
    "wait_tcp",
    "wait_unix",
]

LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class ProcessError(RuntimeError):
    """A process we wait for exited, or what we wait for did not happen in time."""


class ProcessExited(ProcessError):
    """The process a wait watched exited before the wait was over."""


class WaitTimeout(ProcessError):
    """What a wait was for did not happen in time."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    command: list[str],
    *,
    log: Path | None = None,
    stdout: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new process group, with no stdin.

    Its stderr (and its stdout, unless ``stdout`` is false) is appended to
    ``log``; without a log both are dropped. ``env`` replaces the environment
    (``None``: this process's).

    A new process group, not a new session: with the kernel's autogroup
    scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, on by default in
    most desktop and CI kernels) every session is one scheduling group with an
    equal share of the CPU, so a session per process gave WordPress's eight PHP
    workers together the CPU of one emulator. Measured on the fair-lanes case
    (bench/RESULTS.md): PHP got a quarter of a core during a bulk flood and the
    high lane's WordPress time grew tenfold. In one session the stack's
    threads share the CPU as they would on any one machine.
    """
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        return subprocess.Popen(  # noqa: S603 - argv lists built by our own callers, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout else subprocess.DEVNULL,
            stderr=out if log is not None else subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            process_group=0,  # the leader of its own group (stop() reaches its children)
        )


def stop(
    process: subprocess.Popen[bytes],
    sig: signal.Signals = signal.SIGTERM,
    *,
    timeout_s: float = 10.0,
) -> None:
    """Stop a process :func:`spawn` started and everything in its process group.

    ``sig`` goes to the whole group, as a terminal's Ctrl-C would: a server's
    master (gunicorn's, the PHP server's) then exits once its workers have, and
    reaps them, so no worker is orphaned. An orphan would be handed to init, and
    not every init (a container's, a sandbox's) reaps, which leaves zombies.
    After ``timeout_s`` it escalates to SIGKILL; last, whatever of the group is
    still running (a JVM its gcloud wrapper left behind) is killed.
    """
    group = process.pid  # spawn() made it the group leader
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
            os.killpg(group, signal.SIGCONT)  # a paused group acts on ``sig`` only once resumed
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # Children first, so the leader can still reap them; then the leader.
            for pid in _group_members(group):
                if pid != group:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
    # Anything of the group still running (none after a clean shutdown).
    deadline = time.monotonic() + timeout_s
    while (members := _group_members(group)) and time.monotonic() < deadline:
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members


def wait_for(
    check: Callable[[], T],
    what: str,
    timeout_s: float,
    *,
    interval_s: float = 0.25,
    process: subprocess.Popen[bytes] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    :class:`ProcessExited` if ``process`` exits first; :class:`WaitTimeout`,
    naming ``what``, after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessExited(
                f"the process exited with code {process.returncode} while waiting for {what}"
            )
        value = check()
        if value:
            return value
        time.sleep(interval_s)
    raise WaitTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
        return True
    return False


def wait_tcp(
    port: int,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    interval_s: float = 0.1,
) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    wait_for(
        lambda: _accepts(port),
        f"127.0.0.1:{port} to accept connections",
        timeout_s,
        interval_s=interval_s,
        process=process,
    )


def _answers(url: str, request_timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=request_timeout_s) as resp:  # noqa: S310 - loopback
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):  # HTTPError (4xx, 5xx) is a URLError
        return False


def wait_http(
    url: str,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    interval_s: float = 0.2,
    request_timeout_s: float = 2.0,
) -> None:
    """Wait until a GET of ``url`` answers 2xx."""
    wait_for(
        lambda: _answers(url, request_timeout_s),
        f"{url} to answer",
        timeout_s,
        interval_s=interval_s,
        process=process,
    )


def _unix_accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def wait_unix(
    path: Path,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    interval_s: float = 0.1,
) -> None:
    """Wait until something accepts connections on the unix socket at ``path``."""
    wait_for(
        lambda: _unix_accepts(path),
        f"{path} to accept connections",
        timeout_s,
        interval_s=interval_s,
        process=process,
    )
