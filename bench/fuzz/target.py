"""The ingress under test: its real entry point against the emulators, checked case by case.

:class:`IngressFuzzer` sends each :class:`~bench.fuzz.oracle.Case` through
``functions/ingress/main.py`` under ``functions_framework``'s test client, with
a fresh bucket, collection and topic, and checks it against the oracle; after
the run it audits the backends.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bench._common import FUNCTIONS
from bench.fuzz.oracle import (
    KNOWN_STATUSES,
    SOURCES,
    Case,
    InvariantBroken,
    genuine,
    prescribed,
    seen_headers,
    source_name,
)
from bench.fuzz.strategies import Strategies
from hookpress.events import RAW_NAME, event_key, marked_provider_id
from hookpress.providers import PROVIDERS

#: the public URL a source is configured with (Twilio signs the URL it calls)
PUBLIC_URL = "https://hooks.example.com/hookpress"


def public_url(source: str) -> str:
    return f"{PUBLIC_URL}/{source}"


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
        app = functions_framework.create_app(
            target="ingress", source=str(FUNCTIONS / "ingress" / "main.py")
        )
        self.client = app.test_client()
        self.accepted_keys: set[str] = set()
        self.report = FuzzReport()
        self._secret_values = [v for vs in self.keys.values() for v in vs]
        self._secret_values += list(self.signing.values())

    def close(self) -> None:
        """Uninstall the ingestor and delete the subscription."""
        from hookpress import ingress

        ingress.install(None)
        with contextlib.suppress(Exception):
            self.subscriber.delete_subscription(request={"subscription": self.subscription})

    # -- one case -------------------------------------------------------------

    def _send(self, case: Case, sink: LogSink) -> Any:
        overrides: dict[str, Any] = {}
        kwargs: dict[str, Any] = {"headers": case.headers}
        if case.chunked:
            kwargs["input_stream"] = io.BytesIO(case.body)
            overrides["wsgi.input_terminated"] = True
            overrides["CONTENT_LENGTH"] = ""
        else:
            kwargs["data"] = case.body
            if case.declared_length is not None:
                overrides["CONTENT_LENGTH"] = str(case.declared_length)
        with contextlib.redirect_stdout(sink):
            return self.client.open(
                case.path, method=case.method, environ_overrides=overrides, **kwargs
            )

    def check(self, case: Case) -> None:
        """Send one case and check every invariant; raise InvariantBroken."""
        sink = LogSink()
        started = time.time()
        response = self._send(case, sink)
        status = response.status_code
        report = self.report
        report.cases += 1
        report.statuses[status] += 1
        kind = case.kind.split(":")[0]
        report.kinds[kind] += 1
        report.kind_seconds[kind] += time.time() - started

        def fail(why: str) -> None:
            raise InvariantBroken(f"{why}: got {status} for {case.describe()}")

        if status >= 500:
            fail("a 5xx with healthy backends")
        if status == 308 and "//" in case.path:
            # Flask merges repeated slashes with a redirect before any of our code runs.
            return self._check_logs(case, sink)
        if status not in KNOWN_STATUSES:
            fail("a status outside the table")
        seen = seen_headers(case.headers)
        rule = prescribed(case, seen, self.sources)
        if rule is not None:
            expected, why = rule
            if status != expected:
                fail(why)
            return self._check_logs(case, sink)
        name = source_name(case.path)
        if status in {202, 200} and response.is_json and "event_id" in (response.get_json() or {}):
            received = case.body
            if case.declared_length is not None:
                received = case.body[: case.declared_length]
            if not (
                genuine(name, seen, received, self.keys[name], started)
                or genuine(name, seen, received, self.keys[name], time.time())
            ):
                fail("ACCEPTED WITHOUT A VALID SIGNATURE")
            self._check_stored(case, response.get_json()["event_id"], received, status)
        elif case.pristine:
            fail("a genuinely signed event was not accepted")
        self._check_logs(case, sink)
        return None

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
