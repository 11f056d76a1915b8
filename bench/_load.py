"""Load for the benchmark: functions-framework servers, pre-signed requests, an async client.

The client is asyncio over raw keep-alive HTTP/1.1 connections, so that on a
2-core machine it takes as little CPU from the server as a Python client can;
every request is built and signed before the clock starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench._common import summary
from hookpress.local.framework import framework_command
from hookpress.local.processes import free_port, spawn, stop, wait_tcp
from hookpress.signatures import SCHEMES

__all__ = [
    "BlockingConnection",
    "LoadResult",
    "ProcessTree",
    "Schedstat",
    "Server",
    "build_requests",
    "run_load",
    "sign_requests",
]


@dataclass
class LoadResult:
    """One load run: latencies, statuses, wall time, and the server's CPU and memory."""

    concurrency: int
    latencies_s: list[float]
    statuses: dict[int, int]
    wall_s: float
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    #: the serving threads' time runnable but waiting for a core, and how many times they
    #: were put on one (None: not read, e.g. a tree of processes whose threads come and go)
    queued_s: float | None = None
    scheduled: int | None = None

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return len(self.latencies_s) / self.wall_s if self.wall_s else 0.0

    def __add__(self, other: LoadResult) -> LoadResult:
        """Two rounds of the same load as one (latencies pooled, CPU and time summed)."""
        statuses = dict(self.statuses)
        for code, count in other.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
        return LoadResult(
            self.concurrency,
            self.latencies_s + other.latencies_s,
            statuses,
            self.wall_s + other.wall_s,
            self.cpu_s + other.cpu_s,
            max(self.peak_rss_mib, other.peak_rss_mib),
            None if self.queued_s is None or other.queued_s is None
            else self.queued_s + other.queued_s,
            None if self.scheduled is None or other.scheduled is None
            else self.scheduled + other.scheduled,
        )  # fmt: skip

    def figures(self) -> dict[str, float | int | dict[int, int]]:
        """JSON-ready figures."""
        n = len(self.latencies_s)
        return {
            "concurrency": self.concurrency,
            "requests": n,
            "throughput_rps": round(self.throughput, 1),
            **summary(self.latencies_s),
            "cpu_ms_per_request": round(1000 * self.cpu_s / n, 3) if n else 0.0,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "statuses": self.statuses,
            **(
                {
                    "queued_ms_per_request": round(1000 * self.queued_s / n, 3),
                    "scheduled_per_request": round(self.scheduled / n, 2),
                }
                if n and self.queued_s is not None and self.scheduled is not None
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class Schedstat:
    """A thread's (or a sum of threads') ``/proc/.../schedstat``: the time it ran on a CPU,
    the time it was runnable but waited for one (both in ns), and how many times it was put
    on one (Documentation/scheduler/sched-stats.rst in the kernel's tree)."""

    ran_ns: int = 0
    queued_ns: int = 0
    scheduled: int = 0

    @classmethod
    def read(cls, path: str) -> Schedstat:
        """One thread's, from its ``schedstat`` file."""
        with open(path, encoding="ascii") as f:
            ran, queued, scheduled = f.read().split()[:3]
        return cls(int(ran), int(queued), int(scheduled))

    @classmethod
    def of_thread(cls) -> Schedstat:
        """The calling thread's own."""
        return cls.read(f"/proc/self/task/{threading.get_native_id()}/schedstat")

    def __add__(self, other: Schedstat) -> Schedstat:
        return Schedstat(
            self.ran_ns + other.ran_ns,
            self.queued_ns + other.queued_ns,
            self.scheduled + other.scheduled,
        )

    def __sub__(self, other: Schedstat) -> Schedstat:
        return Schedstat(
            self.ran_ns - other.ran_ns,
            self.queued_ns - other.queued_ns,
            self.scheduled - other.scheduled,
        )


def _threads_schedstat(pid: int) -> Schedstat:
    """The sum over a process's live threads, to the nanosecond (``/proc/PID/task/*/schedstat``)."""
    total = Schedstat()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread just ended
            total += Schedstat.read(f"/proc/{pid}/task/{tid}/schedstat")
    return total


class ProcessTree:
    """A serving process and its children, measured as one: CPU seconds and resident memory.

    CPU is read per thread, to the nanosecond: a process's own counters (what psutil
    reads) come in clock ticks of 10 ms, and at concurrency 1 a front's round of 100
    bare 202s is ~50 ms of CPU, so a tick was ±20 % of the figure every other one is
    divided by. A thread's count goes when the thread ends, so a tree that starts and
    ends threads as it works (the emulators' JVMs) sets ``per_thread`` False and is read
    from the processes' counters, which keep what ended threads spent.
    """

    per_thread = True

    @property
    def root_pid(self) -> int:
        """The process whose tree is measured."""
        raise NotImplementedError

    def tree(self) -> list[psutil.Process]:
        """The root and its descendants."""
        root = psutil.Process(self.root_pid)
        return [root, *root.children(recursive=True)]

    def cpu_s(self) -> float:
        """user + sys of the whole tree so far."""
        return self.reading()[0]

    def reading(self) -> tuple[float, Schedstat | None]:
        """The tree's CPU seconds so far, and its threads' :class:`Schedstat` when it is read
        per thread (one read of each thread's file gives both)."""
        threads = self.schedstat()
        if threads is not None:
            return threads.ran_ns / 1e9, threads
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total, None

    def schedstat(self) -> Schedstat | None:
        """The tree's live threads' :class:`Schedstat` summed (None unless ``per_thread``).

        What a front's threads wait for a core, and how often they are woken, is where a
        request's latency goes besides its CPU and its backends on a shared machine."""
        if not self.per_thread:
            return None
        total = Schedstat()
        for proc in self.tree():
            with contextlib.suppress(psutil.Error, FileNotFoundError, ProcessLookupError):
                total += _threads_schedstat(proc.pid)
        return total

    def rss_mib(self) -> float:
        """Resident memory of the whole tree."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total / (1024 * 1024)


@dataclass
class Server(ProcessTree):
    """A functions-framework server (gunicorn) in its own process group."""

    source: Path
    target: str
    env: Mapping[str, str]
    workers: int = 1
    threads: int = 8
    port: int = field(default_factory=free_port)
    stderr: Path | None = None  # where the server's stderr goes (e.g. -X importtime); else nowhere
    python: str = sys.executable  # e.g. a venv of one function's requirements.txt
    cwd: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start; return the seconds until the port accepted connections."""
        started = time.perf_counter()
        self._proc = spawn(
            framework_command(self.python, self.target, self.source, self.port),
            log=self.stderr,
            stdout=False,
            env={
                **os.environ,
                **self.env,
                "WORKERS": str(self.workers),
                "THREADS": str(self.threads),
            },
            cwd=self.cwd,
        )
        # Polled every 2 ms: a cold start is ~0.2 s, and a coarser poll would round it
        # up by as much as its own step.
        wait_tcp(self.port, 60, self._proc, interval_s=0.002)
        return time.perf_counter() - started

    @property
    def root_pid(self) -> int:
        """The master's pid."""
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc.pid

    @property
    def pid(self) -> int:
        """The master's pid."""
        return self.root_pid

    def stop(self) -> None:
        """Stop the group."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def signed_request(source: str, scheme: str, secret: str, body: bytes, delivery_id: str) -> bytes:
    """A complete HTTP/1.1 request, signed now."""
    headers = SCHEMES[scheme].sign(body, secret, now=time.time(), delivery_id=delivery_id)
    lines = [
        f"POST /{source} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def event_bodies(n: int, tag: str, size: int = 600) -> list[tuple[str, bytes]]:
    """N distinct events (id, JSON body), each about ``size`` bytes."""
    out = []
    for i in range(n):
        ident = f"bench-{tag}-{i:06d}"
        payload = {"id": ident, "event_id": ident, "type": "bench.event", "status": "completed"}
        payload["padding"] = "x" * max(0, size - len(json.dumps(payload)) - 14)
        out.append((ident, json.dumps(payload).encode()))
    return out


def sign_requests(
    events: Sequence[tuple[str, bytes]], secrets: Mapping[str, str], schemes: Mapping[str, str]
) -> list[bytes]:
    """The events as signed requests, spread over the sources in turn."""
    sources = sorted(secrets)
    return [
        signed_request(source, schemes[source], secrets[source], body, ident)
        for i, (ident, body) in enumerate(events)
        for source in (sources[i % len(sources)],)
    ]


def build_requests(
    n: int, tag: str, secrets: Mapping[str, str], schemes: Mapping[str, str], size: int = 600
) -> list[bytes]:
    """N distinct signed events over the sources, each about ``size`` bytes."""
    return sign_requests(event_bodies(n, tag, size), secrets, schemes)


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """An answer's status line and headers: its status, ``Content-Length`` (0 if none),
    whether it says ``Connection: close``, and whether it is chunked."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    close = False
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    return status, length, close, chunked


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, length, close, chunked = _parse_head(head)
    if chunked:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def _connection(
    port: int, requests: Sequence[bytes], latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            started = time.perf_counter()
            writer.write(raw)
            await writer.drain()
            try:
                status, close = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status, close = 599, True
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


class BlockingConnection:
    """One kept-alive connection to 127.0.0.1:``port``, one request at a time, in the
    calling thread: send, then block in ``recv`` until the answer is whole. No event loop
    wakes between the answer's arrival and the clock's read (bench.run.figure_paired)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._sock = self._connect()
        self._buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self._port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(self, raw: bytes) -> tuple[int, float]:
        """Send one request; its answer's status and the seconds from send to the answer's
        last byte (599: the connection failed)."""
        started = time.perf_counter()
        try:
            self._sock.sendall(raw)
            status, close = self._answer()
        except (OSError, ValueError):
            status, close = 599, True
        took = time.perf_counter() - started
        if close:
            self.close()
            self._sock, self._buffer = self._connect(), b""
        return status, took

    def _fill(self, condition: Callable[[], bool]) -> None:
        while not condition():
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ValueError("the server closed the connection mid-answer")
            self._buffer += chunk

    def _answer(self) -> tuple[int, bool]:
        self._fill(lambda: b"\r\n\r\n" in self._buffer)
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status, length, close, chunked = _parse_head(head)
        if chunked:
            raise ValueError("a chunked answer: every front here sends a length")
        self._fill(lambda: len(self._buffer) >= length)
        self._buffer = self._buffer[length:]
        return status, close

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def run_load(
    port: int, requests: Sequence[bytes], concurrency: int, server: ProcessTree | None = None
) -> LoadResult:
    """Send ``requests`` over ``concurrency`` keep-alive connections; measure."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    shares = [requests[i::concurrency] for i in range(concurrency)]
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set() and server is not None:
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], server.rss_mib())
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before, sched_before = server.reading() if server else (0.0, None)
    sampler.start()

    async def main() -> None:
        await asyncio.gather(*(_connection(port, s, latencies, statuses) for s in shares if s))

    started = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    cpu_after, sched_after = server.reading() if server else (0.0, None)
    cpu = cpu_after - cpu_before
    if sched_before is None or sched_after is None:
        return LoadResult(concurrency, latencies, statuses, wall, cpu, peak[0])
    spent = sched_after - sched_before
    return LoadResult(
        concurrency, latencies, statuses, wall, cpu, peak[0], spent.queued_ns / 1e9, spent.scheduled
    )


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Start, yield, stop."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
