"""The benchmark's load (bench/_load.py): the scheduler reading (what a front's threads waited
for a core), and the blocking client of figure_paired."""

from __future__ import annotations

import os
import threading

from bench._common import work_directory
from bench._load import BlockingConnection, LoadResult, ProcessTree, Schedstat
from tests.local_http import DROP, ScriptedServer, json_reply


class _This(ProcessTree):
    """This test's own process, as the benchmark reads a server's."""

    @property
    def root_pid(self) -> int:
        return os.getpid()


def _spin(n: int = 200_000) -> int:
    return sum(i * i for i in range(n))


def test_a_thread_reads_what_it_ran_waited_and_was_scheduled() -> None:
    before = Schedstat.of_thread()
    _spin()
    spent = Schedstat.of_thread() - before
    assert spent.ran_ns > 0
    assert spent.queued_ns >= 0
    assert spent.scheduled >= 0


def test_the_tree_sums_every_live_thread_of_the_process() -> None:
    started, done = threading.Event(), threading.Event()

    def worker() -> None:
        _spin()
        started.set()
        done.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        started.wait(5)
        tree = _This().schedstat()
        mine = Schedstat.of_thread()
        assert tree is not None
        # this thread's count is inside the sum, and the worker's CPU adds to it
        assert tree.ran_ns > mine.ran_ns
        assert tree.scheduled >= mine.scheduled
    finally:
        done.set()
        thread.join()


def test_a_tree_read_per_process_reports_no_scheduling() -> None:
    class _Processes(_This):
        per_thread = False

    assert _Processes().schedstat() is None


def test_rounds_add_their_waits_and_an_unread_round_makes_the_sum_unknown() -> None:
    a = LoadResult(1, [0.01, 0.02], {202: 2}, 0.03, 0.004, 10.0, 0.002, 20)
    b = LoadResult(1, [0.01, 0.01], {202: 2}, 0.02, 0.004, 12.0, 0.004, 30)
    both = (a + b).figures()
    assert both["queued_ms_per_request"] == 1.5  # 6 ms over 4 requests
    assert both["scheduled_per_request"] == 12.5
    unread = a + LoadResult(1, [0.01], {202: 1}, 0.01, 0.002)
    assert "queued_ms_per_request" not in unread.figures()
    assert "scheduled_per_request" not in unread.figures()


def _post(n: int) -> bytes:
    body = b'{"n": %d}' % n
    return b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_the_blocking_client_reads_whole_answers_on_one_kept_alive_connection() -> None:
    server = ScriptedServer(lambda seen, status: json_reply(status, {"padding": "x" * 100_000}))
    server.script = [
        202,
        202,
        lambda seen: json_reply(202, {"last": True}, Connection="close"),
        DROP,  # closed without an answer: 599, and a new connection for the next
        202,
    ]
    conn = BlockingConnection(server.port)
    try:
        answers = [conn.exchange(_post(i)) for i in range(5)]
    finally:
        conn.close()
        server.close()
    assert [status for status, _ in answers] == [202, 202, 202, 599, 202]
    assert all(took > 0 for _, took in answers)
    assert [seen.content for seen in server.requests] == [b'{"n": %d}' % i for i in range(5)]
    assert server.connections == 3  # one, a new one after its close, one after the drop


def test_the_work_directory_goes_in_ram_when_a_tmpfs_has_room(tmp_path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n/dev/vda / ext4 rw 0 0\n")
    where = {"ram": tmp_path, "mounts": mounts, "default": "/tmp"}
    assert work_directory(room=1, **where) == (str(tmp_path), "tmpfs")
    # no room: the system's temporary directory, and the type of the file system it is on
    assert work_directory(room=2**62, **where) == (None, "ext4")
    mounts.write_text("/dev/vda / ext4 rw 0 0\n")  # not a tmpfs
    assert work_directory(room=1, **where) == (None, "ext4")
