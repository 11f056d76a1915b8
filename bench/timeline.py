"""Where a request's time goes at concurrency 1, and a cold start's (issue 12, point 6).

The two figures issue 12 still misses, or meets only at the line, are the ingress's
p50 at c = 1 and its cold start. This splits each into stages. The ingress runs as
figure 3 runs it: from its deployed archive, in a virtualenv of only its
requirements.txt (``bench.run.deployed``). functions-framework serves it through a
wrapper module (:data:`WRAPPER`) that reads the clock where each stage begins and
ends, by wrapping the functions that begin and end them. Nothing of the ingress
changes, and nothing here runs in the other figures. The clock is ``time.perf_counter``
in both processes, CLOCK_MONOTONIC on Linux: one clock for the whole machine, so
the client's send and receive sit on the same line as the server's stages.

A request, one new signed event at a time on one kept-alive connection (the first
:data:`SKIP` left out, as figure 1's warm-up). Each stage is the median of its own
duration, so the stages need not add up to the p50 exactly:

- *to the function*: the client's send to the function's first line (uvicorn wakes
  and parses; Starlette's and functions-framework's middleware and routes);
- *into the pool*: reading the body, then the pool thread's first line;
- *verify, parse, build*: up to the GCS upload's start, the signature's check given too;
- *the three calls*: the upload ∥ the record's create (with any ``published`` mark
  waiting to ride along: ``hookpress.backends._batch``), the wait for the upload's
  answer, then the publish, each given too; figure 1's direct-calls floor makes
  these three, without the mark;
- *back to the loop*: the publish's return to the loop's next line, the log line;
- *the answer out*: the log line's end to the client holding the whole answer.

A cold start, :data:`BOOTS` times, each from just before the process is spawned
to the first answer (a 202), as figure 3 times it:

- *Python, functions-framework, Flask*: until ``main.py`` starts (what a bare hello's start is
  too, but for the hello's own module);
- *main.py's imports*, in its order: functions-framework's ASGI mode (Starlette),
  ``hookpress.ingress``, then uvicorn's worker (``harden_the_server``);
- *to listening*: gunicorn's configuration and its socket;
- *the worker's start*: the worker forked and started (uvloop, the server), the
  request's way to the function;
- *the runtime*: settings and secrets, read by the first request;
- *the first event*: its pipeline, with what it imports on first use and the first
  connection to each backend; its signature's check given too, which reads the
  source's secret for the first time;
- *the answer out*.

The cold start is timed in both of figure 3's configurations: the local one, and the
deployed one (Secret Manager over its REST API and the token from the metadata server,
both local stand-ins, and every API over TLS as in the cloud; ``bench.run._deployed_env``),
whose wrapper first points Secret Manager's host at its stand-in. Those first lines
import ``hookpress.backends._rest`` (and ``hookpress.wire``, ``hookpress.instance``)
before the first mark, so there that import counts in the first stage, not in
``hookpress.ingress``'s.

``nox -s bench`` runs it after the cold starts (bench.json's ``timeline``);
``-- --only timeline`` runs it alone.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench._common import percentile
from bench._load import Server

__all__ = [
    "BOOTS",
    "REQUESTS",
    "SKIP",
    "WRAPPER",
    "cold_stages",
    "cold_start",
    "mark_cost",
    "markdown",
    "measure",
    "request_stages",
    "tail",
    "tail_markdown",
    "tail_stages",
]

REQUESTS = 600
SKIP = 100
BOOTS = 7

#: The wrapper functions-framework serves (``--source``, target ``ingress``), next to the
#: deployed ``main.py``. A request that carries an ``X-Timeline-Id`` (:func:`tail`) has
#: its own list of marks: the loop's stages find it by that header, the pool thread's by
#: a thread-local set when its ``ingest`` begins. Without one (a cold start's first
#: request, :func:`measure`'s one at a time) one list holds the marks, whichever thread
#: reads the clock.
WRAPPER = '''\
"""The deployed ingress, its stages timed (bench/timeline.py). Not deployed."""
import json, os, sys, threading, time
_clock = time.perf_counter
_boot = [("main>", _clock())]
from hookpress.startup import collector_held
with collector_held():  # as main.py loads them; main's own hold nests in this one
    import functions_framework.aio
    import starlette.requests, starlette.responses
    _boot.append(("asgi<", _clock()))
    import hookpress.ingress
    _boot.append(("hookpress<", _clock()))
    import main
    _boot.append(("main<", _clock()))
from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.ingress import _http
from hookpress.ingress._pipeline import Ingestor
from hookpress.publication import Publication
_marks = []
_done = []
_by_id = {}  # X-Timeline-Id: that request's marks
_current = threading.local()
def _here():
    return getattr(_current, "marks", _marks)
def _timed(owner, name, before, after):
    inner = getattr(owner, name)
    def timed(*args, **kwargs):
        marks = _here()
        marks.append((before, _clock()))
        try:
            return inner(*args, **kwargs)
        finally:
            marks.append((after, _clock()))
    setattr(owner, name, timed)
_timed(hookpress.ingress, "build_ingestor", "build>", "build<")
_ingest = Ingestor.ingest
def _ingest_timed(self, source, headers, *args, **kwargs):
    _current.marks = _by_id.get(headers.get("x-timeline-id"), _marks)
    _current.marks.append(("ingest>", _clock()))
    try:
        return _ingest(self, source, headers, *args, **kwargs)
    finally:
        _current.marks.append(("ingest<", _clock()))
Ingestor.ingest = _ingest_timed
_timed(Ingestor, "_verify", "verify>", "verify<")
_start_put = RawStore.start_put
def _start_put_timed(*args, **kwargs):
    marks = _here()
    marks.append(("put>", _clock()))
    finish = _start_put(*args, **kwargs)
    def finish_timed():
        marks.append(("put-wait>", _clock()))
        try:
            return finish()
        finally:
            marks.append(("put-wait<", _clock()))
    return finish_timed
RawStore.start_put = _start_put_timed
_timed(EventRecords, "create", "create>", "create<")
_timed(EventRecords, "create_all", "create>", "create<")
_timed(Publication, "publish_prepared", "publish>", "publish<")
_log_result = _http.log_result
def _log_timed(ingestor, log, result, name, headers, started):
    marks = _by_id.get(headers.get("x-timeline-id"), _marks)
    marks.append(("log>", _clock()))
    try:
        return _log_result(ingestor, log, result, name, headers, started)
    finally:
        marks.append(("log<", _clock()))
_http.log_result = _log_timed
@functions_framework.aio.http
async def ingress(request):
    rid = request.headers.get("x-timeline-id")
    marks = _marks if rid is None else _by_id.setdefault(rid, [])
    marks.append(("function>", _clock()))
    answer = await main.ingress(request)
    if rid is None:
        _done.append(list(_marks))
        _marks.clear()
    else:
        _done.append([("id", int(rid))] + _by_id.pop(rid))
    if len(_done) == 1:
        sys.stderr.write("TIMELINE-BOOT " + json.dumps(_boot + _done[0]) + "\\n")
        sys.stderr.flush()
    if len(_done) == int(os.environ.get("TIMELINE_REQUESTS", "0")):
        with open(os.environ["TIMELINE_OUT"], "w") as out:
            json.dump(_done, out)
    return answer
'''

#: (stage, from mark, to mark); "sent" and "received" are the client's
REQUEST_STAGES: tuple[tuple[str, str, str], ...] = (
    ("to the function", "sent", "function>"),
    ("into the pool", "function>", "ingest>"),
    ("verify, parse, build", "ingest>", "put>"),
    ("— the signature's check", "verify>", "verify<"),
    ("the three calls", "put>", "publish<"),
    ("— the record's create (the upload alongside)", "create>", "create<"),
    ("— then the upload's answer", "put-wait>", "put-wait<"),
    ("— the publish", "publish>", "publish<"),
    ("back to the loop", "publish<", "log>"),
    ("the log line", "log>", "log<"),
    ("the answer out", "log<", "received"),
)

COLD_STAGES: tuple[tuple[str, str, str], ...] = (
    ("Python, functions-framework, Flask", "spawned", "main>"),
    ("functions-framework's ASGI mode (Starlette)", "main>", "asgi<"),
    ("hookpress.ingress", "asgi<", "hookpress<"),
    ("the rest of main.py (uvicorn's worker)", "hookpress<", "main<"),
    ("to listening", "main<", "listening"),
    ("the worker's start", "listening", "function>"),
    ("the runtime (settings, secrets)", "build>", "build<"),
    ("the first event", "ingest>", "ingest<"),
    ("— its signature's check, with the first read of its secret", "verify>", "verify<"),
    ("the answer out", "ingest<", "received"),
)


def _durations(
    runs: Sequence[Mapping[str, float]],
    stages: Sequence[tuple[str, str, str]],
    percent: float | None = None,
) -> dict[str, float]:
    """Each stage's median (or ``percent``-th percentile) over ``runs`` (ms), from the runs
    that hold both its marks.

    A stage no run holds is an error: a function of the ingress renamed under the
    wrapper would otherwise leave its stage out of the table without a word.
    """
    out: dict[str, float] = {}
    for stage, start, end in stages:
        values = [(run[end] - run[start]) * 1000 for run in runs if start in run and end in run]
        if not values:
            raise RuntimeError(f"no run timed {stage!r} ({start} to {end})")
        middle = statistics.median(values) if percent is None else percentile(values, percent)
        out[stage] = round(middle, 3)
    return out


def request_stages(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """The request stages' medians and the whole request's p50 (ms)."""
    totals = [(run["received"] - run["sent"]) * 1000 for run in runs]
    return {
        "requests": len(runs),
        "p50_ms": round(statistics.median(totals), 3),
        "stages_ms": _durations(runs, REQUEST_STAGES),
    }


def cold_stages(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """The cold start's stages' medians and the whole start's median (ms)."""
    totals = [(run["received"] - run["spawned"]) * 1000 for run in runs]
    return {
        "boots": len(runs),
        "median_ms": round(statistics.median(totals), 1),
        "stages_ms": _durations(runs, COLD_STAGES),
    }


def _exchange(sock: socket.socket, request: bytes) -> tuple[float, float, bytes]:
    """Send ``request``, read one whole answer: (sent, received, status line)."""
    sent = time.perf_counter()
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    return sent, time.perf_counter(), lines[0]


def _server(
    function_dir: Path,
    python: str,
    env: Mapping[str, str],
    stderr: Path,
    prelude: str = "",
    threads: int = 8,
) -> Server:
    wrapper = function_dir / "timeline_main.py"
    wrapper.write_text(prelude + WRAPPER)
    return Server(
        wrapper, "ingress", env, python=python, cwd=function_dir, stderr=stderr, threads=threads
    )


def cold_start(
    function_dir: Path,
    python: str,
    env: Mapping[str, str],
    requests: Callable[[int], list[bytes]],
    workdir: Path,
    *,
    boots: int = BOOTS,
    prelude: str = "",
) -> dict[str, Any]:
    """The cold start's stages over ``boots`` starts (see the module's docstring).

    ``prelude``: lines the wrapper runs first (the deployed configuration's stand-in hosts).
    """
    runs: list[dict[str, float]] = []
    for i in range(boots):
        log = workdir / f"timeline-boot-{time.time_ns()}-{i}.log"  # a start's own
        first = requests(1)[0]
        server = _server(function_dir, python, env, log, prelude)
        spawned = time.perf_counter()
        listening = spawned + server.start()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                _, received, status = _exchange(sock, first)
        finally:
            server.stop()
        if not status.startswith(b"HTTP/1.1 202"):
            raise RuntimeError(f"the first event was answered {status!r}")
        marks = next(
            json.loads(line.split(" ", 1)[1])
            for line in log.read_text(errors="replace").splitlines()
            if line.startswith("TIMELINE-BOOT ")
        )
        runs.append(
            {"spawned": spawned, "listening": listening, "received": received} | dict(marks)
        )
    return cold_stages(runs)


def measure(
    function_dir: Path,
    python: str,
    env: Mapping[str, str],
    requests: Callable[[int], list[bytes]],
    workdir: Path,
    *,
    n: int = REQUESTS,
    boots: int = BOOTS,
) -> dict[str, Any]:
    """Both timelines of the deployed ingress in ``function_dir`` (see the module's docstring),
    and what the mark costs a create.

    ``requests(k)``: k fresh signed events as raw HTTP/1.1 requests.
    """
    cold = cold_start(function_dir, python, env, requests, workdir, boots=boots)
    out = workdir / "timeline-requests.json"
    events = requests(n)
    server = _server(
        function_dir,
        python,
        {**env, "TIMELINE_REQUESTS": str(n), "TIMELINE_OUT": str(out)},
        workdir / "timeline-requests.log",
    )
    server.start()
    client: list[tuple[float, float]] = []
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for request in events:
                sent, received, status = _exchange(sock, request)
                if not status.startswith(b"HTTP/1.1 202"):
                    raise RuntimeError(f"an event was answered {status!r}")
                client.append((sent, received))
    finally:
        server.stop()
    # The wrapper writes the file before it returns the last answer, so it is whole by now.
    served = json.loads(out.read_text())
    runs = [
        {"sent": sent, "received": received} | dict(marks)
        for (sent, received), marks in zip(client, served, strict=True)
    ][SKIP:]
    return {
        "request": request_stages(runs),
        "mark": mark_cost(env["HOOKPRESS_PROJECT"]),
        "cold_start": cold,
    }


#: :func:`tail`'s load: figure 1's c = 16 events, the first of them left out as its warm-up
TAIL_CONCURRENCY = 16
TAIL_REQUESTS = 1500
TAIL_SKIP = 16 * 16
#: the slowest requests whose stages :func:`tail` sets beside everyone's
TAIL_SHARE = 0.05


def _with_id(request: bytes, rid: int) -> bytes:
    """``request`` with an ``X-Timeline-Id`` header after its request line (no scheme signs it)."""
    line, _, rest = request.partition(b"\r\n")
    return line + b"\r\nX-Timeline-Id: %d\r\n" % rid + rest


def tail(
    function_dir: Path,
    python: str,
    env: Mapping[str, str],
    requests: Callable[[int], list[bytes]],
    workdir: Path,
    *,
    c: int = TAIL_CONCURRENCY,
    n: int = TAIL_REQUESTS,
    skip: int = TAIL_SKIP,
) -> dict[str, Any]:
    """Where a request's time goes at concurrency ``c``, in the slowest of them too.

    The deployed ingress (as :func:`measure` runs it, with ``c`` threads as figure 1 serves
    each level) takes ``n`` new events, ``c`` at a time, each of ``c`` client threads
    sending its share one at a time on its own kept-alive connection. Each request carries
    its number in an ``X-Timeline-Id`` header, so the wrapper keeps its marks apart from
    the requests in flight beside it. For every stage: its median over all the requests,
    its p99, and its median over the slowest :data:`TAIL_SHARE` of them (by the whole
    request, client to client): where the requests that make the p99 spent what the others
    did not. The first ``skip`` requests warm the server and are left out.
    """
    out = workdir / f"timeline-tail-{time.time_ns()}.json"
    events = [_with_id(request, i) for i, request in enumerate(requests(n))]
    server = _server(
        function_dir,
        python,
        {**env, "TIMELINE_REQUESTS": str(n), "TIMELINE_OUT": str(out)},
        workdir / "timeline-tail.log",
        threads=max(8, c),
    )
    server.start()
    client: dict[int, tuple[float, float]] = {}
    failures: list[BaseException] = []

    def connection(share: Sequence[tuple[int, bytes]]) -> None:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for rid, request in share:
                    sent, received, status = _exchange(sock, request)
                    if not status.startswith(b"HTTP/1.1 202"):
                        raise RuntimeError(f"an event was answered {status!r}")
                    client[rid] = (sent, received)
        except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
            failures.append(exc)

    numbered = list(enumerate(events))
    threads = [
        threading.Thread(target=connection, args=(numbered[i::c],), daemon=True) for i in range(c)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    if failures:
        raise failures[0]
    served = {int(dict(marks)["id"]): dict(marks) for marks in json.loads(out.read_text())}
    runs = [
        {"sent": client[rid][0], "received": client[rid][1]} | served[rid]
        for rid in sorted(client)
        if rid >= skip
    ]
    return {"concurrency": c} | tail_stages(runs)


def tail_stages(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """The request stages over all ``runs`` (medians and p99s) and over the slowest
    :data:`TAIL_SHARE` of them by the whole request (medians), with its p50 and p99 (ms)."""
    totals = [(run["received"] - run["sent"]) * 1000 for run in runs]
    cut = percentile(totals, 100 * (1 - TAIL_SHARE))
    slowest = [run for run in runs if (run["received"] - run["sent"]) * 1000 >= cut]
    return {
        "requests": len(runs),
        "p50_ms": round(statistics.median(totals), 3),
        "p99_ms": round(percentile(totals, 99), 3),
        "slowest": len(slowest),
        "slowest_from_ms": round(cut, 3),
        "stages_ms": _durations(runs, REQUEST_STAGES),
        "stages_p99_ms": _durations(runs, REQUEST_STAGES, 99),
        "slowest_stages_ms": _durations(slowest, REQUEST_STAGES),
    }


def mark_cost(project: str, n: int = 400) -> dict[str, float]:
    """What the ``published`` mark riding along costs a create, against the emulator.

    ``n`` records created one at a time from this process, every other one with the
    previous record's mark queued to ride with it (as the ingress's next event
    carries it at c = 1): each kind's p50 (ms). Figure 1's direct calls make no mark.
    """
    from datetime import UTC, datetime

    from hookpress.backends.firestore import EventRecords
    from hookpress.events import new_record

    records = EventRecords(project, "(default)", "events", 10)
    tag = f"{time.time_ns():x}"
    alone: list[float] = []
    carrying: list[float] = []
    previous: tuple[str, datetime] | None = None
    for i in range(n + 20):
        key = f"timeline-mark-{tag}-{i}"
        record = new_record(
            source="stripe",
            scheme="stripe",
            provider_id=key,
            received_at=datetime.now(UTC),
            raw_uri=f"gs://hookpress-bench/{key}",
            body_sha256="0" * 64,
            ttl_days=1,
        )
        rides = i % 2 == 1 and previous is not None
        if rides and previous is not None:
            mark = records.later_write(previous[0], {"status": "published"})
            records.send_later(mark, previous[1])
        started = time.perf_counter()
        stamp = records.create(key, record)
        took = (time.perf_counter() - started) * 1000
        if stamp is None:
            raise RuntimeError(f"{key} existed")
        previous = (key, stamp)
        if i >= 20:  # the first ones warm the connection
            (carrying if rides else alone).append(took)
    return {
        "create_p50_ms": round(statistics.median(alone), 3),
        "create_with_mark_p50_ms": round(statistics.median(carrying), 3),
    }


def markdown(timeline: Mapping[str, Any]) -> list[str]:
    """bench.md's lines for the two timelines."""
    request, cold = timeline["request"], timeline["cold_start"]
    lines = [
        "",
        "### Where the time goes: a request at c = 1, a cold start (bench/timeline.py)",
        "",
        f"The deployed ingress, its stages timed from outside. A request: {request['requests']} "
        f"new events one at a time on one connection, p50 {request['p50_ms']} ms; each stage's "
        "median (ms):",
        "",
        "| stage | ms |",
        "|---|---|",
        *(f"| {stage} | {ms} |" for stage, ms in request["stages_ms"].items()),
        "",
        f"The `published` mark riding with a create (in-process, against the emulator): "
        f"create p50 {timeline['mark']['create_p50_ms']} ms alone, "
        f"{timeline['mark']['create_with_mark_p50_ms']} ms carrying the previous record's mark.",
        "",
        f"A cold start, {cold['boots']} starts, median {cold['median_ms']} ms; "
        "each stage's median (ms):",
        "",
        "| stage | ms |",
        "|---|---|",
        *(f"| {stage} | {ms} |" for stage, ms in cold["stages_ms"].items()),
    ]
    deployed = timeline.get("cold_start_deployed")
    if deployed:
        lines += [
            "",
            f"The same in the deployed configuration (figure 3's: Secret Manager and the "
            f"metadata server, stand-ins; every API over TLS), {deployed['boots']} starts, median "
            f"{deployed['median_ms']} ms:",
            "",
            "| stage | ms |",
            "|---|---|",
            *(f"| {stage} | {ms} |" for stage, ms in deployed["stages_ms"].items()),
        ]
    return lines


def tail_markdown(tail: Mapping[str, Any]) -> list[str]:
    """bench.md's lines for :func:`tail`."""
    lines = [
        "",
        f"### Where the time goes at c = {tail['concurrency']}, in the slowest requests too "
        "(bench/timeline.py `tail`)",
        "",
        f"The deployed ingress, {tail['requests']} new events {tail['concurrency']} at a time: "
        f"p50 {tail['p50_ms']} ms, p99 {tail['p99_ms']} ms. Each stage's median and p99 over "
        f"all of them, and its median over the slowest {tail['slowest']} (from "
        f"{tail['slowest_from_ms']} ms):",
        "",
        "| stage | median ms | p99 ms | the slowest: median ms |",
        "|---|---|---|---|",
    ]
    return lines + [
        f"| {stage} | {ms} | {tail['stages_p99_ms'][stage]} | {tail['slowest_stages_ms'][stage]} |"
        for stage, ms in tail["stages_ms"].items()
    ]
