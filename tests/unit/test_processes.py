"""hookpress.local.processes: process groups started and stopped whole, and the waits."""

from __future__ import annotations

import http.server
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpress.local import processes
from hookpress.local.processes import (
    ProcessExited,
    WaitTimeout,
    free_port,
    spawn,
    stop,
    wait_for,
    wait_http,
    wait_tcp,
    wait_unix,
)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _pids(path: Path, count: int) -> list[int]:
    """The first ``count`` pids a shell wrote to ``path``, one a line."""

    def written() -> str:
        text = path.read_text() if path.exists() else ""
        return text if text.count("\n") >= count else ""

    return [int(line) for line in wait_for(written, f"{count} pids in {path}", 10).split()]


def test_stop_ends_the_leader_and_what_it_spawned(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = spawn(["sh", "-c", f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"])
    child, leader = _pids(pids, 2)
    assert leader == proc.pid
    assert processes._group_members(proc.pid) != []

    stop(proc)

    assert proc.returncode is not None
    assert not _alive(child)
    assert processes._group_members(proc.pid) == []


def test_a_member_that_ignores_the_signal_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    proc = spawn(["sh", "-c", f"trap '' TERM INT; sleep 60 & echo $! >> {pids}; wait"])
    (child,) = _pids(pids, 1)
    started = time.monotonic()

    stop(proc, signal.SIGINT, timeout_s=0.5)

    assert time.monotonic() - started < 10
    assert proc.returncode is not None
    assert not _alive(child)


def test_what_an_exited_leader_left_behind_is_killed(tmp_path: Path) -> None:
    # The gcloud wrapper can exit and leave its JVM running in the group.
    pids = tmp_path / "pids"
    proc = spawn(["sh", "-c", f"sleep 60 & echo $! >> {pids}"])
    (child,) = _pids(pids, 1)
    proc.wait(timeout=10)
    assert _alive(child)

    stop(proc)

    assert wait_for(lambda: not _alive(child), "the orphan to die", 5, interval_s=0.02)


def test_a_spawned_process_leads_its_group_in_the_callers_session() -> None:
    """Its own group (stop() kills the group), but not a session of its own: the
    kernel's autogroup scheduling would give each session an equal CPU share."""
    import os

    proc = spawn(["sleep", "30"])
    try:
        assert os.getpgid(proc.pid) == proc.pid
        assert os.getsid(proc.pid) == os.getsid(0)
    finally:
        stop(proc)


def test_output_goes_to_the_log_and_stdout_can_be_dropped(tmp_path: Path) -> None:
    both, errors = tmp_path / "both.log", tmp_path / "errors.log"
    for log, keep in ((both, True), (errors, False)):
        proc = spawn(["sh", "-c", "echo out; echo err >&2"], log=log, stdout=keep)
        assert proc.wait(timeout=10) == 0
    assert both.read_text().split() == ["out", "err"]
    assert errors.read_text().split() == ["err"]


def test_spawn_passes_environment_and_working_directory(tmp_path: Path) -> None:
    log = tmp_path / "env.log"
    proc = spawn(["sh", "-c", 'echo "$HP_X $(pwd)"'], log=log, env={"HP_X": "x"}, cwd=tmp_path)
    assert proc.wait(timeout=10) == 0
    assert log.read_text().strip() == f"x {tmp_path}"


def test_wait_for_returns_the_first_truthy_value() -> None:
    values = iter([0, None, "", "ready"])
    assert wait_for(lambda: next(values), "ready", 10, interval_s=0.01) == "ready"


def test_wait_for_says_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match="after 0 s waiting for the moon"):
        wait_for(lambda: False, "the moon", 0.1, interval_s=0.01)


def test_a_wait_ends_when_the_process_exits() -> None:
    proc = spawn(["sh", "-c", "exit 3"])
    with pytest.raises(ProcessExited, match="code 3"):
        wait_tcp(free_port(), 30, proc)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_wait_tcp_sees_a_listening_port(listener: int) -> None:
    wait_tcp(listener, 5)


def test_a_free_port_is_free_and_refuses_connections() -> None:
    port = free_port()
    with pytest.raises(WaitTimeout):
        wait_tcp(port, 0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_wait_http_wants_a_2xx(http_port: int) -> None:
    wait_http(f"http://127.0.0.1:{http_port}/ok", 5)
    with pytest.raises(WaitTimeout, match="/missing to answer"):
        wait_http(f"http://127.0.0.1:{http_port}/missing", 0.5)


def test_wait_unix_waits_for_a_listener(tmp_path: Path) -> None:
    path = tmp_path / "db.sock"
    with pytest.raises(WaitTimeout):
        wait_unix(path, 0.2)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        sock.listen()
        wait_unix(path, 5)


def test_stop_of_a_process_that_already_exited_is_quiet() -> None:
    proc = spawn(["true"])
    proc.wait(timeout=10)
    stop(proc)
    assert proc.returncode == 0


def test_stop_with_sigkill_is_an_instance_dying() -> None:
    proc = spawn(["sleep", "60"])
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
