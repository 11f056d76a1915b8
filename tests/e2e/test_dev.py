"""``nox -s dev`` end to end: start it, use it as printed, stop it, and find nothing left.

Each test starts ``python -m hookpress.local.dev`` (what the nox session runs)
as a subprocess with its own state directory: it runs scripts/bootstrap,
starts its own emulators, WordPress and functions, and writes local.json
there. The processes and listening ports it owns are recorded from the
process tree while it runs; after the stop, none may remain.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from hookpress.local.stack import DEFAULT_SOURCES
from hookpress.providers import PROVIDERS
from tests.e2e.cli_harness import ROOT, Cli, WordPressReader, clean_env, wait_for

pytestmark = pytest.mark.slow

START_S = 240.0
STOP_S = 120.0


@dataclass
class Dev:
    """A running ``hookpress.local.dev`` and everything it printed so far."""

    proc: subprocess.Popen[str]
    state: Path
    lines: list[str] = field(default_factory=list)

    @property
    def local_file(self) -> Path:
        return self.state / "local.json"

    def output(self) -> str:
        return "\n".join(self.lines)

    def printed_send_line(self) -> str:
        sends = [line.strip() for line in self.lines if " send " in line and "hookpress" in line]
        assert len(sends) == 1, f"expected one `hookpress send` line:\n{self.output()}"
        return sends[0]

    def content(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.local_file.read_text())
        return data

    def owned(self) -> tuple[list[psutil.Process], set[int]]:
        """Every process under the launcher, and the TCP ports they listen on."""
        children = psutil.Process(self.proc.pid).children(recursive=True)
        ports: set[int] = set()
        for child in children:
            try:
                for conn in child.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN:
                        ports.add(conn.laddr.port)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return children, ports


def _start(tmp_path: Path, *extra: str) -> Dev:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hookpress.local.dev",
            "--state-dir",
            str(tmp_path / "state"),
            *extra,
        ],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    dev = Dev(proc, tmp_path / "state")

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            dev.lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or (dev.local_file.exists() and any("Events as they move" in x for x in dev.lines))
            ),
            "the local stack to be ready",
            timeout_s=START_S,
        )
    except AssertionError:
        proc.kill()
        raise AssertionError(f"dev did not get ready:\n{dev.output()}") from None
    assert proc.poll() is None, f"dev exited ({proc.returncode}):\n{dev.output()}"
    return dev


def _alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


def _listening(ports: set[int], processes: list[psutil.Process]) -> set[int]:
    """Those of the stack's ports still listening, in a process of the stack.

    A freed port may be taken at once by anything else on the machine (other
    test runs pick free ports too): that is not the stack's.
    """
    pids = {p.pid for p in processes}
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports and c.pid in pids | {None}
    }


def _gone(dev: Dev, processes: list[psutil.Process], ports: set[int]) -> None:
    """Wait until no process and no listening port of the stack is left; say what is."""
    try:
        wait_for(lambda: not _alive(processes), "every process of the stack to end", STOP_S)
        wait_for(lambda: not _listening(ports, processes), "every port to close", 30)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nalive: {_alive(processes)}\nlistening: {_listening(ports, processes)}\n"
            f"{dev.output()}"
        ) from None


def _stop_and_check(dev: Dev, stop: Any) -> None:
    processes, ports = dev.owned()
    assert len(processes) >= 8, f"expected the whole stack under dev, found {len(processes)}"
    assert ports, "the stack listens on no port?"
    stop()
    try:
        code = dev.proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        dev.proc.kill()
        raise AssertionError(f"dev did not stop:\n{dev.output()}") from None
    _gone(dev, processes, ports)
    assert code == 0, dev.output()
    assert not dev.local_file.exists(), "local.json must not outlive the stack"
    assert "stopped; local.json removed" in dev.output()


@pytest.fixture
def cleanup() -> Iterator[list[Dev]]:
    started: list[Dev] = []
    yield started
    for dev in started:
        if dev.proc.poll() is None:
            for child in psutil.Process(dev.proc.pid).children(recursive=True):
                child.kill()
            dev.proc.kill()


def test_dev_runs_the_pipeline_as_printed_and_sigterm_stops_everything(tmp_path, cleanup):
    dev = _start(tmp_path)
    cleanup.append(dev)
    content = dev.content()
    assert "bootstrap: ready" in dev.output()
    assert sorted(content["sources"]) == sorted([*DEFAULT_SOURCES, "smoke"]), (
        "one source per provider, named after it, the asymmetric one, and the smoke source"
    )
    assert set(PROVIDERS) <= set(content["sources"])
    assert oct(dev.local_file.stat().st_mode & 0o777) == "0o600"

    # The printed line works exactly as printed, from where dev was started.
    printed = subprocess.run(
        shlex.split(dev.printed_send_line()),
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert printed.returncode == 0, printed.stdout + printed.stderr
    match = re.search(r"202 accepted\s+event_id=([0-9a-f]{64})", printed.stdout)
    assert match, printed.stdout
    keys = {match[1]}

    cli = Cli(dev.local_file)
    for source in ("stripe", "github", "standard-webhooks"):
        sent = cli.json("send", source, "--example")
        assert sent["http_status"] == 202, sent
        keys.add(sent["event_id"])

    wordpress = WordPressReader.from_local_json(content)
    for key in keys:
        record = wait_for(
            lambda key=key: (r := cli.json("events", "show", key))["status"] == "delivered" and r,
            f"{key} delivered",
        )
        posts = wait_for(
            lambda record=record: wordpress.find(record["provider_event_id"]), "the post"
        )
        assert len(posts) == 1
        assert posts[0]["meta"]["source"] == record["source"]
    # ... and dev showed each one move, one line per step.
    for key in keys:
        wait_for(
            lambda key=key: any(key[:12] in x and "delivered" in x for x in dev.lines),
            f"the live line for {key}",
            timeout_s=10,
        )
        assert any(key[:12] in x and "accepted → published" in x for x in dev.lines)

    _stop_and_check(dev, lambda: dev.proc.send_signal(signal.SIGTERM))


def test_ctrl_c_stops_everything_and_a_second_dev_refuses_meanwhile(tmp_path, cleanup):
    dev = _start(tmp_path, "--no-bootstrap", "--source", "only=stripe")
    cleanup.append(dev)
    assert list(dev.content()["sources"]) == ["only", "smoke"]
    assert "bootstrap" not in dev.output()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookpress.local.dev",
            "--no-bootstrap",
            "--state-dir",
            str(dev.state),
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert dev.local_file.exists(), "the running stack keeps its description"
    _stop_and_check(dev, lambda: dev.proc.send_signal(signal.SIGINT))


def test_a_killed_launcher_still_stops_everything(tmp_path, cleanup):
    """nox kills its child half a second after Ctrl-C, before it could stop anything.

    SIGKILL with no signal first: only the pipe from the launcher tells the
    supervisor that it is gone.
    """
    dev = _start(tmp_path, "--no-bootstrap", "--source", "only=stripe")
    cleanup.append(dev)
    processes, ports = dev.owned()
    dev.proc.kill()
    dev.proc.wait(timeout=10)
    _gone(dev, processes, ports)
    assert not dev.local_file.exists(), dev.output()
    assert "stopped; local.json removed" in dev.output()
