"""The ingress under test: its real entry point against the emulators, checked case by case.

:class:`IngressFuzzer` sends each :class:`~bench.fuzz.oracle.Case` to
``functions/ingress/main.py`` as deployed: functions-framework's ASGI app
(Starlette), called directly as uvicorn calls it (:class:`AsgiClient`), with a
fresh bucket, collection and topic, and checks it against the oracle; after
the run it audits the backends.

**What uvicorn hands the app, and what the fuzzer hands it.** The deployed
server is uvicorn (gunicorn's ``UvicornWorker``) with httptools, llhttp's
parser. For each case the fuzzer writes the request head a client would send
(:func:`wire_head`: the request line with the target as is, ``Host``, the
case's headers, then ``Content-Length``, the declared one when it lies, or
``Transfer-Encoding: chunked``) and has httptools parse it: a head it refuses
(a method llhttp does not know, such as ``FOO`` or a lower-case ``post``) is
answered by uvicorn's own 400 and never reaches the app (:func:`server_refuses`).
Otherwise the scope is built as uvicorn's ``on_headers_complete`` builds it
(:func:`build_scope`): the method as sent, ``raw_path`` the target's path as
sent, ``path`` that path percent-decoded, ``query_string``, and the headers as
one (lower-case name, value) pair per header line, repeats kept apart, each
value without the whitespace around it. ``receive`` hands the body over as
uvicorn does (:func:`body_messages`): in pieces of at most 64 KiB (uvicorn
stops reading the socket past that much buffered), a chunked body in the
case's chunks and then the empty last one; after the last piece it says
``http.disconnect`` once the answer is sent. A client that declared more than
it sends stops and goes: ``http.disconnect`` where the rest should be. One that
declared less has its body cut at the declared length (what follows is, to the
server, the next request: a head it refuses with its own 400, which is what
that client reads). ``send`` is held to uvicorn's rules: the start first, header
names and values it would write, a body as long as a declared Content-Length,
nothing after the end. tests/fuzz checks these against uvicorn itself, on a
socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import re
import secrets
import statistics
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bench._common import FUNCTIONS
from bench.fuzz.oracle import (
    FRAMEWORK,
    INGRESS,
    KNOWN_STATUSES,
    MAX_BODY,
    SERVER,
    SOURCES,
    Case,
    InvariantBroken,
    genuine,
    header_bytes,
    prescribed,
    seen_headers,
    source_name,
    split_target,
)
from bench.fuzz.strategies import Strategies
from hookpress.events import RAW_NAME, event_key, marked_provider_id
from hookpress.logs import read_records
from hookpress.providers import PROVIDERS

#: the public URL a source is configured with (Twilio signs the URL it calls)
PUBLIC_URL = "https://hooks.example.com/hookpress"
#: the Host every request names (nothing on the request's path reads it)
HOST = "hooks.example.com"
#: uvicorn pauses reading the socket once this much body is buffered (HIGH_WATER_LIMIT)
SERVER_PIECE = 64 * 1024
#: uvicorn's scope: HTTP/1.1, no root path; any addresses (the ASGI version: build_scope)
_SCOPE_BASE: Mapping[str, Any] = {
    "type": "http",
    "http_version": "1.1",
    "server": ("169.254.8.1", 8080),
    "client": ("169.254.169.126", 41234),
    "scheme": "http",
    "root_path": "",
}
#: the answer uvicorn writes itself to a request head its parser refuses
SERVER_REFUSAL = b"Invalid HTTP request received."
#: what uvicorn refuses to write in an answer's header names and values (it raises)
_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
#: how long the app may wait on ``receive`` after the last piece without answering
RECEIVE_PATIENCE_S = 30.0
#: how long one request may take (the backends' own timeout is 10 s)
ANSWER_WITHIN_S = 120.0


def public_url(source: str) -> str:
    return f"{PUBLIC_URL}/{source}"


# -- a request as uvicorn hands it to the app --------------------------------------


def header_lines(case: Case) -> list[tuple[str, str]]:
    """The header lines a client sends for ``case``: Host, the case's own, the framing."""
    framing = (
        ("Transfer-Encoding", "chunked")
        if case.chunked
        else (
            "Content-Length",
            str(len(case.body) if case.declared_length is None else case.declared_length),
        )
    )
    return [("Host", HOST), *case.headers, framing]


def wire_head(case: Case) -> bytes:
    """The request line and header lines, as sent."""
    lines = [f"{case.method} {case.path} HTTP/1.1".encode("latin-1")]
    lines += [b"%s: %s" % (n.encode("latin-1"), header_bytes(v)) for n, v in header_lines(case)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def pieces(case: Case) -> list[bytes]:
    """The body as the server takes it in: the case's pieces (chunks) or uvicorn's 64 KiB."""
    size = case.piece or SERVER_PIECE
    return [case.body[i : i + size] for i in range(0, len(case.body), size)]


def wire_request(case: Case) -> bytes:
    """The whole request as a client writes it to the socket."""
    if not case.chunked:
        return wire_head(case) + case.body
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces(case))
    return wire_head(case) + chunks + b"0\r\n\r\n"


class _Head:
    """httptools callbacks: none needed, the parser's verdict is the point."""


def server_refuses(case: Case) -> bool:
    """Whether uvicorn's parser (httptools) refuses the request head: uvicorn then answers
    400 itself, closes the connection and never calls the app."""
    import httptools

    try:
        httptools.HttpRequestParser(_Head()).feed_data(wire_head(case))
    except httptools.HttpParserError:
        return True
    return False


def build_scope(case: Case) -> dict[str, Any]:
    """The scope uvicorn (httptools) builds for ``case``'s head."""
    raw_path, query = split_target(case.path)
    path = urllib.parse.unquote(raw_path) if "%" in raw_path else raw_path
    return {
        **_SCOPE_BASE,
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "state": {},
        "method": case.method,
        "path": path,
        "raw_path": raw_path.encode("ascii"),
        "query_string": query.encode("ascii"),
        "headers": [
            (name.lower().encode("latin-1"), header_bytes(value).strip(b" \t"))
            for name, value in header_lines(case)
        ],
    }


def body_messages(case: Case) -> list[dict[str, Any]]:
    """What ``receive`` hands over before the client is done: the body the server frames
    (cut at a declared length shorter than the body) in pieces, the last one saying
    ``more_body: False``; a chunked body's last, empty chunk on its own. A client that
    declared more than it sends never gets to the end: every piece says more is coming."""
    if case.declared_length is not None and case.declared_length < len(case.body):
        case = dataclasses.replace(case, body=case.body[: case.declared_length])
    parts = pieces(case)
    if case.cut_short:
        return [{"type": "http.request", "body": p, "more_body": True} for p in parts]
    if case.chunked or not parts:
        parts.append(b"")
    last = len(parts) - 1
    return [{"type": "http.request", "body": p, "more_body": i < last} for i, p in enumerate(parts)]


@dataclass
class Answer:
    """One answer, and how the app went about it."""

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes  # as the app sent it (uvicorn writes none of it to a HEAD)
    by: str  # oracle.INGRESS, FRAMEWORK or SERVER
    pulled: int = 0  # body bytes the app took from ``receive``
    whole: bool = False  # the app took the body's last message
    client_left: bool = False  # ``receive`` told the app the client was gone

    def header(self, name: str) -> str | None:
        """A header's value (the first), by lower-case name."""
        key = name.encode("latin-1")
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == key), None)

    @property
    def is_json(self) -> bool:
        return (self.header("content-type") or "").startswith("application/json")

    def get_json(self) -> Any:
        """The JSON body (the name Flask's test client gave it, which the deliver half uses)."""
        return json.loads(self.body) if self.is_json else None

    @property
    def closes(self) -> bool:
        """Whether the answer says ``Connection: close``."""
        value = (self.header("connection") or "").lower()
        return "close" in [token.strip() for token in value.split(",")]


def answered_by(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """INGRESS for the ingress's own answers (JSON, never cached), else FRAMEWORK."""
    names = {k.lower(): v for k, v in headers}
    ours = names.get(b"cache-control") == b"no-store" and names.get(
        b"content-type", b""
    ).startswith(b"application/json")
    return INGRESS if ours else FRAMEWORK


class _Conversation:
    """``receive`` and ``send`` for one request, as uvicorn's RequestResponseCycle."""

    def __init__(self, case: Case) -> None:
        self.messages = deque(body_messages(case))
        self.leaves = case.cut_short
        self.head = case.method == "HEAD"
        self.pulled = 0
        self.whole = False
        self.client_left = False
        self.start: Mapping[str, Any] | None = None
        self.body = bytearray()
        self.length: int | None = None
        self.complete = asyncio.Event()
        self.broken: str | None = None

    def _break(self, why: str) -> None:
        self.broken = self.broken or why
        raise RuntimeError(why)  # uvicorn raises into the app too

    async def receive(self) -> dict[str, Any]:
        if self.messages:
            message = self.messages.popleft()
            self.pulled += len(message["body"])
            self.whole = not message["more_body"]
            return message
        if self.leaves:
            self.client_left = True
            return {"type": "http.disconnect"}
        # All of it handed over: uvicorn says "disconnect" once the answer is complete.
        try:
            await asyncio.wait_for(self.complete.wait(), RECEIVE_PATIENCE_S)
        except TimeoutError:
            self.broken = self.broken or "the app waited for a body it had all of, unanswered"
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if self.start is None:
            if kind != "http.response.start":
                self._break(f"{kind!r} before http.response.start")
            self.start = message
            for name, value in message.get("headers", []):
                if _BAD_NAME.search(name) or _BAD_VALUE.search(value):
                    self._break(f"a header uvicorn will not write: {name!r}")
                if name.lower() == b"content-length":
                    self.length = int(value)
        elif not self.complete.is_set():
            if kind != "http.response.body":
                self._break(f"{kind!r} inside the answer's body")
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete.set()
                if self.length is not None and not self.head and len(self.body) != self.length:
                    self._break(f"a body of {len(self.body)} B under Content-Length {self.length}")
        else:
            self._break(f"{kind!r} after the answer was complete")

    def answer(self, case: Case) -> Answer:
        """The answer the app gave; InvariantBroken if uvicorn would not have sent it."""
        if self.broken:
            raise InvariantBroken(f"the ASGI conversation broke uvicorn's rules: {self.broken}: "
                                  f"{case.describe()}")  # fmt: skip
        if self.start is None or not self.complete.is_set():
            raise InvariantBroken(
                f"the app returned without a complete answer (uvicorn: a 500): {case.describe()}"
            )
        headers = [(bytes(k), bytes(v)) for k, v in self.start.get("headers", [])]
        return Answer(
            int(self.start["status"]),
            headers,
            bytes(self.body),
            answered_by(headers),
            self.pulled,
            self.whole,
            self.client_left,
        )


class AsgiClient:
    """Calls an ASGI app as uvicorn would, one request at a time, on a loop of its own."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def exchange(self, case: Case) -> Answer:
        """Send ``case``; its answer (uvicorn's own 400 when its parser refuses the head)."""
        if server_refuses(case):
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
            return Answer(400, headers, SERVER_REFUSAL, SERVER)
        return self.loop.run_until_complete(self._call(case))

    async def _call(self, case: Case) -> Answer:
        conversation = _Conversation(case)
        call = self.app(build_scope(case), conversation.receive, conversation.send)
        try:
            await asyncio.wait_for(call, ANSWER_WITHIN_S)
        except TimeoutError as exc:
            raise InvariantBroken(
                f"no answer in {ANSWER_WITHIN_S:.0f} s: {case.describe()}"
            ) from exc
        except Exception as exc:
            # uvicorn logs it and answers 500, or drops the connection mid-answer
            why = conversation.broken or f"the app raised {exc!r}"
            raise InvariantBroken(f"{why}: {case.describe()}") from exc
        return conversation.answer(case)

    def post(
        self, path: str, data: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        """A plain POST (the deliver half's signed events)."""
        return self.exchange(Case("post", "POST", path, list((headers or {}).items()), data))


def hypothesis_run(
    strategy: st.SearchStrategy[Any], check: Callable[[Any], None], size: int, batch_seed: int
) -> None:
    """``size`` cases of ``strategy`` through ``check``: seeded, no database, no deadline."""

    @seed(batch_seed)
    @settings(
        max_examples=size,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    run()


class LogSink(io.TextIOBase):
    """Collects the ingress's log lines (stdout) so they can be checked, not printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, s: str) -> int:
        self.lines.append(s)
        return len(s)


def tally(counts: Counter[Any]) -> dict[str, int]:
    """A counter as JSON: keys as strings, in key order."""
    return {str(k): v for k, v in sorted(counts.items())}


@dataclass
class RunReport:
    """What every fuzz run counts: cases, batches and how long they took."""

    #: decimals of ``cases_per_second`` in :meth:`as_dict`
    RATE_DIGITS: ClassVar[int] = 1

    cases: int = 0
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: these counts first, then the subclass's."""
        rate = round(self.cases / self.seconds, self.RATE_DIGITS) if self.seconds else None
        return {
            "cases": self.cases,
            "batches": self.batches,
            "seconds": round(self.seconds, 1),
            "cases_per_second": rate,
        }


@dataclass
class FuzzReport(RunReport):
    """Counts of one ingress run."""

    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_seconds: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    new_events: int = 0
    reached_backends: int = 0
    pristine: int = 0
    rss_mib: list[float] = field(default_factory=list)
    audit: dict[str, int] = field(default_factory=dict)
    #: who answered: the ingress, the framework's routes, or the server's parser
    by: Counter[str] = field(default_factory=Counter)
    #: the framework's answers that left part of a body unread without Connection: close
    #: (uvicorn then reads the rest of it, and drops it, to find the next request)
    kept_open: int = 0

    @property
    def rss_growth_mib(self) -> float:
        """Median RSS over the last quarter of the batches minus that over the first quarter.

        Medians, because a batch that happens to hold a few 4 MiB bodies at its
        end lifts one sample without saying anything about a leak.
        """
        if len(self.rss_mib) < 2:
            return 0.0
        q = max(1, len(self.rss_mib) // 4)
        return statistics.median(self.rss_mib[-q:]) - statistics.median(self.rss_mib[:q])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            **super().as_dict(),
            "statuses": tally(self.statuses),
            "answered_by": tally(self.by),
            "framework_unread_kept_open": self.kept_open,
            "kinds": tally(self.kinds),
            "request_ms_by_kind": {
                k: round(1000 * self.kind_seconds[k] / n, 2) for k, n in sorted(self.kinds.items())
            },
            "accepted": self.accepted,
            "new_events": self.new_events,
            "reached_backends": self.reached_backends,
            "pristine": self.pristine,
            "rss_mib_after_each_batch": [round(x, 1) for x in self.rss_mib],
            "rss_growth_mib": round(self.rss_growth_mib, 1),
            "audit": self.audit,
        }


class IngressFuzzer:
    """The ingress entry point against the emulators, with a fresh bucket, collection and topic.

    ``sources``: one source per provider, named after it (the ingress half: the
    six original schemes; the deliver half: every provider).
    """

    def __init__(self, project: str, workdir: Path, sources: Sequence[str] = SOURCES) -> None:
        import functions_framework
        from google.cloud import pubsub_v1

        from hookpress import ingress
        from hookpress.local.emulators import ensure_bucket, ensure_topic
        from hookpress.local.stack import generate_keys

        tag = f"fuzz-{secrets.token_hex(4)}"
        self.project = project
        self.tag = tag
        self.sources = tuple(sources)
        pairs = {s: [generate_keys(s), generate_keys(s)] for s in self.sources}
        #: what the ingress holds (for the HMAC schemes, also what signs)
        self.keys: dict[str, list[str]] = {s: [k.verify for k in ks] for s, ks in pairs.items()}
        #: what a provider signs with (a private key for the asymmetric ones)
        self.signing: dict[str, str] = {s: ks[0].sign for s, ks in pairs.items()}
        secrets_file = workdir / f"{tag}-secrets.json"
        secrets_file.write_text(json.dumps({f"{tag}-{s}": v for s, v in self.keys.items()}))
        ensure_bucket(project, tag)
        topic = ensure_topic(project, tag)
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscription = self.subscriber.subscription_path(project, tag)
        self.subscriber.create_subscription(request={"name": self.subscription, "topic": topic})
        self.env = {
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_SOURCES": json.dumps(
                {
                    s: {"provider": s, "secret": f"{tag}-{s}", "url": public_url(s)}
                    for s in self.sources
                }
            ),
            "HOOKPRESS_RAW_BUCKET": tag,
            "HOOKPRESS_EVENTS_TOPIC": tag,
            "HOOKPRESS_EVENTS_COLLECTION": tag,
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
            "HOOKPRESS_BACKEND_TIMEOUT_S": "10",
        }
        self.ingestor = ingress.build_ingestor(self.env)
        ingress.install(self.ingestor)
        # functions-framework's ASGI app (Starlette): main.py's function is @aio.http
        app = functions_framework.create_app(
            target="ingress", source=str(FUNCTIONS / "ingress" / "main.py")
        )
        self.client = AsgiClient(app)
        self.accepted_keys: set[str] = set()
        self.report = FuzzReport()
        self._secret_values = [v for vs in self.keys.values() for v in vs]
        self._secret_values += list(self.signing.values())

    def close(self) -> None:
        """Uninstall the ingestor, close the client's loop, delete the subscription."""
        from hookpress import ingress

        ingress.install(None)
        self.client.close()
        with contextlib.suppress(Exception):
            self.subscriber.delete_subscription(request={"subscription": self.subscription})

    # -- one case -------------------------------------------------------------

    def check(self, case: Case) -> None:
        """Send one case and check every invariant; raise InvariantBroken."""
        sink = LogSink()
        started = time.time()
        with contextlib.redirect_stdout(sink):
            answer = self.client.exchange(case)
        status = answer.status_code
        report = self.report
        report.cases += 1
        report.statuses[status] += 1
        report.by[answer.by] += 1
        kind = case.kind.split(":")[0]
        report.kinds[kind] += 1
        report.kind_seconds[kind] += time.time() - started

        def fail(why: str) -> None:
            raise InvariantBroken(f"{why}: got {status} from the {answer.by} for {case.describe()}")

        if status >= 500:
            fail("a 5xx with healthy backends")
        self._check_logs(case, sink)
        if answer.by == SERVER:
            return  # uvicorn's parser refused the head: the app never saw it
        self._check_answer(case, answer, sink, fail)
        seen = seen_headers(case.headers)
        rule = prescribed(case, seen, self.sources)
        if rule is not None:
            if status != rule.status or answer.by != rule.by:
                fail(f"{rule.why} (expected {rule.status} from the {rule.by})")
            return
        if answer.by != INGRESS or status not in KNOWN_STATUSES:
            fail("a status outside the table")
        name = source_name(case.path)
        event = answer.get_json() if status in {202, 200} and case.method != "HEAD" else None
        if isinstance(event, dict) and "event_id" in event:
            received = case.body
            if case.declared_length is not None:
                received = case.body[: case.declared_length]
            if not (
                genuine(name, seen, received, self.keys[name], started)
                or genuine(name, seen, received, self.keys[name], time.time())
            ):
                fail("ACCEPTED WITHOUT A VALID SIGNATURE")
            self._check_stored(case, str(event["event_id"]), received, status)
        elif case.pristine:
            fail("a genuinely signed event was not accepted")

    def _check_answer(
        self, case: Case, answer: Answer, sink: LogSink, fail: Callable[[str], None]
    ) -> None:
        """What holds for every answer the app gave, whoever in it gave it."""
        lines = [r for r in read_records("".join(sink.lines).splitlines()) if "http_status" in r]
        limit = MAX_BODY + (case.piece or SERVER_PIECE)
        if answer.pulled > limit:
            fail(f"the app read {answer.pulled:,} B of a body, over the limit and one piece")
        unread = not answer.whole and bool(case.body)
        if answer.by == FRAMEWORK:
            if lines:
                fail("the framework answered, yet the ingress logged a request")
            if unread and not answer.closes:
                self.report.kept_open += 1
            return
        if [r.get("http_status") for r in lines] != [answer.status_code]:
            fail(f"not one ingress log line with the answer's status: {len(lines)} lines")
        if not answer.whole and not answer.closes:
            fail("the body was not read whole, yet the answer keeps the connection open")
        if case.method != "HEAD" and not isinstance(answer.get_json(), dict):
            fail("the ingress's answer is not a JSON object")

    def _check_stored(self, case: Case, key: str, body: bytes, status: int) -> None:
        report = self.report
        report.accepted += 1
        report.reached_backends += 1
        if status == 202:
            report.new_events += 1
        if case.pristine:
            report.pristine += 1
        self.accepted_keys.add(key)
        record = self.ingestor.records.get(key)
        if record is None:
            raise InvariantBroken(f"accepted but no record: {case.describe()}")
        if status != 202:
            return  # a duplicate: the first request's bytes are the ones kept
        if record.data.get("body_sha256") != hashlib.sha256(body).hexdigest():
            raise InvariantBroken(
                f"record body_sha256 differs from the bytes sent: {case.describe()}"
            )
        raw = self.ingestor.raw
        stored = raw.get(raw.name_of(str(record.data.get("raw_uri"))))
        if stored != body:
            raise InvariantBroken(f"stored bytes differ from the bytes sent: {case.describe()}")

    def _check_logs(self, case: Case, sink: LogSink) -> None:
        """No secret, signature or signature-like header value in the log."""
        text = "".join(sink.lines)
        secret_bits = list(self._secret_values)
        for _, value in case.headers:
            if len(value) >= 24 and ("=" in value or "," in value or len(value) >= 40):
                secret_bits.append(value.strip())
        for bit in secret_bits:
            if bit and len(bit) >= 16 and bit in text:
                raise InvariantBroken(f"a secret or signature in the log: {case.describe()}")

    # -- batches and the audit -------------------------------------------------

    def run_batch(self, size: int, batch_seed: int) -> None:
        """One hypothesis run of ``size`` cases."""
        hypothesis_run(Strategies(self.keys).cases(), self.check, size, batch_seed)
        self.report.batches += 1

    def _copy_of_accepted(self, name: str) -> bool:
        """Whether object ``name`` is a copy of an accepted event's body (see audit)."""
        found = self.ingestor.raw.get_with_metadata(name)
        match = RAW_NAME.match(name)
        if found is None or match is None:
            return False
        provider = PROVIDERS.get(found.metadata.get("provider", ""))
        if provider is None or not provider.id_unsigned:
            return False
        first = marked_provider_id(self.ingestor.records, match["source"], found.data)
        return (
            first is not None
            and first != found.metadata.get("provider_event_id")
            and event_key(match["source"], first) in self.accepted_keys
        )

    def audit(self) -> dict[str, int]:
        """Every stored object, record and message belongs to an accepted request."""
        from google.api_core import exceptions as gexc

        raw = self.ingestor.raw
        names = raw.list("raw/")
        by_key = {n.rsplit("/", 1)[1].removesuffix(".json"): n for n in names}
        object_keys = set(by_key)
        # A copy of a GitHub or Shopify body (another id, the same signed bytes) is answered
        # as the first copy's event; its own upload stays (the ingress never deletes). It is
        # explained when its body's marker names an accepted event: replay's own test.
        copies = {k for k in object_keys - self.accepted_keys if self._copy_of_accepted(by_key[k])}
        record_keys = {d.id for d in self.ingestor.records.collection().list_documents()}
        message_keys: list[str] = []
        while True:
            try:
                resp = self.subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": 1000}, timeout=10
                )
            except gexc.DeadlineExceeded:
                break
            if not resp.received_messages:
                break
            message_keys += [
                json.loads(m.message.data)["event_key"] for m in resp.received_messages
            ]
            self.subscriber.acknowledge(
                request={
                    "subscription": self.subscription,
                    "ack_ids": [m.ack_id for m in resp.received_messages],
                }
            )
        audit = {
            "accepted_keys": len(self.accepted_keys),
            "gcs_objects": len(object_keys),
            "firestore_records": len(record_keys),
            "pubsub_messages": len(message_keys),
            "pubsub_distinct_keys": len(set(message_keys)),
            "copy_objects": len(copies),
            "objects_not_accepted": len(object_keys - self.accepted_keys - copies),
            "records_not_accepted": len(record_keys - self.accepted_keys),
            "messages_not_accepted": len(set(message_keys) - self.accepted_keys),
            "accepted_without_record": len(self.accepted_keys - record_keys),
            "accepted_without_object": len(self.accepted_keys - object_keys),
            "accepted_without_message": len(self.accepted_keys - set(message_keys)),
            "messages_duplicated": len(message_keys) - len(set(message_keys)),
        }
        self.report.audit = audit
        broken = {
            k: v
            for k, v in audit.items()
            if k.endswith(
                (
                    "_not_accepted",
                    "_without_record",
                    "_without_object",
                    "_without_message",
                    "_duplicated",
                )
            )
            and v
        }
        if broken:
            raise InvariantBroken(f"the backends hold what no accepted request explains: {broken}")
        return audit
