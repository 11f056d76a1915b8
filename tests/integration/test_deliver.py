"""The deliver function against the real emulators, with WordPress a local HTTP server.

Events are created by the real ingress path first, so the record and the raw
object are exactly what production would hand to delivery. WordPress is a
real HTTP/1.1 server on 127.0.0.1 answering from a script
(:mod:`tests.local_http`): the client's requests and its reading of the
answers go over a socket, as they do in production.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hookpress import deliver
from hookpress.deliver import CONTROL_DOCUMENT, RetryableDeliveryError, Runtime
from hookpress.events import Status
from tests.conftest import FUNCTIONS
from tests.integration.conftest import BUCKET, Backends, signed, unique_body
from tests.latency_proxy import LatencyProxy
from tests.local_http import DROP, Hang, Reply, ScriptedServer, Seen, json_reply
from tests.secretmanager_fake import ERRORS, BrokenSecretManager, secret_manager_errors

READ_TIMEOUT_S = 1.0  # what a Hang step outlasts


class FakeWordPress(ScriptedServer):
    """Answers from a script (statuses, replies, dropped or hung connections); keeps requests."""

    def __init__(self) -> None:
        super().__init__(self.answer, default_status=201)
        self.next_id = 100

    def answer(self, request: Seen, step: int) -> Reply:
        if step in (200, 201):
            self.next_id += 1
            return json_reply(step, {"id": self.next_id, "result": "created"})
        if 300 <= step < 400:
            return step, {"Location": "https://elsewhere.example/steal"}, b""
        return json_reply(step, {"code": "error", "message": "nope " * 2000})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/wp-json"

    @property
    def ingest_url(self) -> str:
        return self.base + "/ai-guy/v1/ingest"

    def posted(self, i: int = -1) -> dict[str, Any]:
        return dict(self.requests[i].json())


@pytest.fixture
def wp() -> Iterator[FakeWordPress]:
    server = FakeWordPress()
    yield server
    server.close()


@pytest.fixture
def deliver_env(ingress_env: dict[str, str], tmp_path: Path, wp: FakeWordPress) -> dict[str, str]:
    secrets = tmp_path / "wp-secrets.json"
    secrets.write_text(json.dumps({"wp-app-password": ["pw-1"]}))
    return {
        "HOOKPRESS_PROJECT": ingress_env["HOOKPRESS_PROJECT"],
        "HOOKPRESS_RAW_BUCKET": BUCKET,
        "HOOKPRESS_WP_BASE_URL": wp.base,
        "HOOKPRESS_WP_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "HOOKPRESS_WP_USER": "hookpress-ingest",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": "wp-app-password",
        "HOOKPRESS_PUSH_AUTH": "none",
        "HOOKPRESS_SECRETS_BACKEND": "file",
        "HOOKPRESS_SECRETS_FILE": str(secrets),
        "HOOKPRESS_SECRET_MIN_REFRESH_S": "0",
        "HOOKPRESS_BREAKER_THRESHOLD": "3",
        "HOOKPRESS_BREAKER_COOLDOWN_S": "60",
    }


@pytest.fixture(scope="session")
def deliver_app() -> Any:
    import functions_framework

    return functions_framework.create_app(
        target="deliver", source=str(FUNCTIONS / "deliver" / "main.py")
    )


@pytest.fixture
def runtime(deliver_env, wp: FakeWordPress) -> Iterator[Callable[..., Runtime]]:
    def make(**env: str) -> Runtime:
        rt = deliver.build_runtime({**deliver_env, **env})
        deliver.install(rt)
        return rt

    make()
    yield make
    deliver.install(None)


def push(
    app: Any,
    key: str,
    path: str = "/",
    *,
    attributes: dict[str, str] | None = None,
    **headers: str,
) -> int:
    data = base64.b64encode(json.dumps({"event_key": key}).encode()).decode()
    envelope = {
        "message": {
            "data": data,
            "messageId": "1",
            "attributes": attributes if attributes is not None else {"event_key": key},
        },
        "subscription": "projects/hookpress-local/subscriptions/events-deliver",
    }
    resp = app.test_client().post(path, json=envelope, headers=headers)
    return int(resp.status_code)


def published_labels(backends: Backends, key: str) -> dict[str, str]:
    """The attributes of the message the ingress published for ``key``, as pushed."""
    for message in backends.messages():
        if json.loads(message.data).get("event_key") == key:
            return dict(message.attributes)
    raise AssertionError(f"no message for {key}")


@pytest.fixture
def event(client, backends: Backends) -> Callable[..., str]:
    """Send a webhook through the real ingress; return its event key."""

    def make(source: str = "stripe", body: bytes | None = None) -> str:
        body = body or unique_body(
            "evt",
            type="payment_intent.succeeded",
            created=1_700_000_000,
            data={"object": {"object": "payment_intent", "id": "pi_9", "amount": 5}},
        )
        resp = client.post(f"/{source}", content=body, headers=signed(source, body))
        assert resp.status_code == 202
        return str(resp.json()["event_id"])

    return make


def test_delivers_and_records_everything(deliver_app, runtime, wp, event, backends):
    key = event()
    assert push(deliver_app, key) == 204

    request = wp.requests[0]
    assert (request.method, request.path) == ("POST", "/wp-json/ai-guy/v1/ingest")
    assert request.host == f"127.0.0.1:{wp.port}"
    assert request.headers["Idempotency-Key"] == key
    assert request.headers["User-Agent"] == "hookpress-deliver"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    user, password = (
        base64.b64decode(request.headers["Authorization"].split()[1]).decode().split(":")
    )
    assert (user, password) == ("hookpress-ingest", "pw-1")
    posted = wp.posted()
    record = backends.record(key)
    assert posted == {
        "source": "stripe",
        "external_id": record["provider_event_id"],
        "status": "payment_intent.succeeded",
        "summary": "payment_intent.succeeded: payment_intent pi_9",
        "metadata": {"object": "payment_intent", "object_id": "pi_9", "amount": 5},
        "occurred_at": "2023-11-14T22:13:20+00:00",
    }
    assert record["status"] == "delivered"
    assert record["attempts"] == 1
    assert record["downstream_status"] == 201
    assert record["wp_post_id"] == wp.next_id
    assert json.loads(record["downstream_body"])["result"] == "created"
    assert record["delivered_at"] is not None
    assert record["last_error"] is None


def _log_line(key: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Deliver's JSON log line about ``key`` among what was printed since the last read."""
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    return next(x for x in lines if x.get("event_key") == key)


def _pushed_log_line(app: Any, key: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    push(app, key)
    return _log_line(key, capsys)


def test_the_log_line_says_how_long_wordpress_took(deliver_app, runtime, wp, event, capsys):
    # What the lanes case cuts a delivery into (bench/_lanestages.py), and what on-call
    # reads to tell a slow WordPress from a slow pipeline.
    line = _pushed_log_line(deliver_app, event(), capsys)
    assert line["outcome"] == "delivered"
    assert isinstance(line["wordpress_ms"], float)
    assert 0 <= line["wordpress_ms"] <= line["duration_ms"]

    wp.script = [503]
    line = _pushed_log_line(deliver_app, event(), capsys)
    assert line["outcome"] == "retry"
    assert isinstance(line["wordpress_ms"], float)


def test_an_already_delivered_event_is_acked_without_calling_wordpress(
    deliver_app, runtime, wp, event
):
    key = event()
    assert push(deliver_app, key) == 204
    assert push(deliver_app, key) == 204
    assert len(wp.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [503, 500, 429, 408, 409, 425, Hang(READ_TIMEOUT_S + 1), DROP],
    ids=lambda f: "hang" if isinstance(f, Hang) else str(f),
)
def test_retryable_failures_nack_and_record_the_attempt(
    deliver_app, runtime, wp, event, backends, failure
):
    key = event()
    wp.script = [failure]
    assert push(deliver_app, key) == 503
    record = backends.record(key)
    assert record["status"] == "published"
    assert record["attempts"] == 1
    assert record["last_error"]
    if isinstance(failure, Hang):
        assert "wordpress_timeout" in record["last_error"]
    if failure == DROP:  # closed with no answer: the request may have been applied
        assert "wordpress_RemoteProtocolError" in record["last_error"]
        assert len(wp.requests) == 1  # so it is not sent again, Pub/Sub redelivers
    if isinstance(failure, int):
        assert record["downstream_status"] == failure
        assert len(record["downstream_body"]) <= 4000

    assert push(deliver_app, key) == 204  # Pub/Sub's redelivery, WordPress has recovered
    record = backends.record(key)
    assert (record["status"], record["attempts"]) == ("delivered", 2)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_permanent_4xx_fails_and_acks(deliver_app, runtime, wp, event, backends, status):
    key = event()
    wp.script = [status]
    assert push(deliver_app, key) == 204
    record = backends.record(key)
    assert record["status"] == "failed"
    assert record["downstream_status"] == status
    assert len(record["downstream_body"]) == 4000  # the first 4,000 characters are kept
    assert len(wp.requests) == 1


def test_a_redirect_is_a_failure_and_never_followed(deliver_app, runtime, wp, event, backends):
    key = event()
    wp.script = [302]
    assert push(deliver_app, key) == 204
    assert backends.record(key)["status"] == "failed"
    assert [(r.host, r.path) for r in wp.requests] == [
        (f"127.0.0.1:{wp.port}", "/wp-json/ai-guy/v1/ingest")
    ]


def test_a_url_in_the_payload_is_data(deliver_app, runtime, wp, event, backends):
    body = unique_body(
        "evt",
        summary="see http://169.254.169.254/computeMetadata/v1/",
        metadata={"callback_url": "https://attacker.example/hook", "wp_base": "https://evil/"},
    )
    key = event("hmac-timestamp", body)
    assert push(deliver_app, key) == 204
    assert [(r.host, r.path) for r in wp.requests] == [
        (f"127.0.0.1:{wp.port}", "/wp-json/ai-guy/v1/ingest")
    ]
    assert wp.posted()["metadata"]["callback_url"] == "https://attacker.example/hook"


def test_a_rotated_application_password_is_picked_up(
    deliver_app, runtime, wp, event, backends, deliver_env
):
    key = event()
    seen: list[str] = []

    def only_new_password(request: Seen) -> Reply:
        password = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        seen.append(password.split(":")[1])
        if password.endswith(":pw-2"):
            return json_reply(201, {"id": 7})
        return json_reply(401, {"code": "invalid_application_password"})

    runtime()
    assert push(deliver_app, event()) == 204  # this instance now holds pw-1
    wp.script = [only_new_password, only_new_password]
    Path(deliver_env["HOOKPRESS_SECRETS_FILE"]).write_text(
        json.dumps({"wp-app-password": ["pw-2", "pw-1"]})
    )
    assert push(deliver_app, key) == 204
    assert seen == ["pw-1", "pw-2"]
    assert backends.record(key)["status"] == "delivered"


def test_pause_by_environment_holds_and_acks(deliver_app, runtime, wp, event, backends):
    runtime(PAUSE_WP_DELIVERY="1")
    key = event()
    assert push(deliver_app, key) == 204
    assert backends.record(key)["status"] == "held"
    assert wp.requests == []


def test_pause_by_control_document_then_resume(deliver_app, runtime, wp, event, backends):
    control = backends.db.collection("control").document(CONTROL_DOCUMENT)
    control.set({"paused": True})
    try:
        runtime()  # a fresh instance: no cached switch
        key = event()
        assert push(deliver_app, key) == 204
        assert backends.record(key)["status"] == "held"
        assert wp.requests == []
    finally:
        control.set({"paused": False})
    runtime()
    assert push(deliver_app, key) == 204  # what replay/resume does: publish it again
    assert backends.record(key)["status"] == "delivered"


def _spy_reads(rt: Runtime, fail_control: bool = False) -> list[tuple[str, str]]:
    """Record the runtime's Firestore reads in the order they go out; optionally make the
    control document's read fail (a BackendError when its answer is read)."""
    from hookpress.backends import BackendError

    records = rt.deliverer.records
    seen: list[tuple[str, str]] = []
    start_get, get = records.start_get, records.get

    def spy_start_get(key: str, collection: str | None = None) -> Any:
        seen.append(("sent", key))
        finish = start_get(key, collection)
        if not fail_control or key != CONTROL_DOCUMENT:
            return finish

        def broken() -> Any:
            finish()
            raise BackendError("firestore", "injected")

        return broken

    def spy_get(key: str, collection: str | None = None) -> Any:
        seen.append(("read", key))
        return get(key, collection)

    records.start_get = spy_start_get  # type: ignore[method-assign]
    records.get = spy_get  # type: ignore[method-assign]
    return seen


def test_a_first_push_sends_the_pause_switch_read_with_the_record_read(
    deliver_app, runtime, wp, event, backends
):
    """The control document is due on an instance's first push: its read goes out before
    the record's, not after it (one round trip less), and is not repeated within its TTL."""
    seen = _spy_reads(runtime())
    first, second = event(), event()
    assert push(deliver_app, first) == 204
    assert seen[:2] == [("sent", CONTROL_DOCUMENT), ("read", first)]
    assert backends.record(first)["status"] == "delivered"
    seen.clear()
    assert push(deliver_app, second) == 204
    assert [k for _, k in seen].count(CONTROL_DOCUMENT) == 0  # cached
    assert backends.record(second)["status"] == "delivered"


def test_a_failed_pause_switch_read_fails_only_a_push_that_needs_it(
    deliver_app, runtime, wp, event, backends
):
    """An unknown event is acked as before, whatever the switch's read did; a known one is
    not delivered blind: 503, and Pub/Sub retries it."""
    _spy_reads(runtime(), fail_control=True)
    assert push(deliver_app, "f" * 64) == 204  # unknown_event: acked, as without the read
    key = event()
    assert push(deliver_app, key) == 503
    assert wp.requests == []
    assert backends.record(key)["status"] != "delivered"


class RawReads:
    """The deliverer's GCS reads and Firestore record reads, in the order they go out,
    and which of the GCS reads were never read back (a connection left out of its pool)."""

    def __init__(self, rt: Runtime) -> None:
        raw, records = rt.deliverer.raw, rt.deliverer.records
        self.seen: list[tuple[str, str]] = []
        self.unread: list[str] = []
        start_get, get = raw.start_get, records.get

        def spy_start_get(name: str) -> Any:
            self.seen.append(("gcs", name))
            finish = start_get(name)
            self.unread.append(name)

            def read() -> Any:
                self.unread.remove(name)
                return finish()

            return read

        def spy_get(key: str, collection: str | None = None) -> Any:
            self.seen.append(("record", key))
            return get(key, collection)

        raw.start_get = spy_start_get  # type: ignore[method-assign]
        records.get = spy_get  # type: ignore[method-assign]


def test_a_push_reads_the_payload_with_the_record(deliver_app, runtime, wp, event, backends):
    """The message's labels name the raw object: its read goes out before the record's read
    is waited for, so the push waits for one round trip instead of two, and is not repeated."""
    key = event()
    labels = published_labels(backends, key)
    name = backends.record(key)["raw_uri"].split("/", 3)[3]
    reads = RawReads(runtime())
    assert push(deliver_app, key, attributes=labels) == 204
    assert reads.seen == [("gcs", name), ("record", key)]
    assert reads.unread == []
    assert backends.record(key)["status"] == "delivered"
    # What WordPress got is what the ordinary read gives (a push without labels).
    posted = wp.posted()
    other = event()
    assert push(deliver_app, other) == 204
    assert reads.seen[-2:] == [
        ("record", other),
        ("gcs", backends.record(other)["raw_uri"].split("/", 3)[3]),
    ]
    assert {k: v for k, v in wp.posted().items() if k != "external_id"} == {
        k: v for k, v in posted.items() if k != "external_id"
    }


def test_the_record_decides_which_object_is_delivered(deliver_app, runtime, wp, event, backends):
    """Labels naming another object (a day earlier here; in production a record whose
    ``raw_uri`` a provider's retry repaired) are a hint the record overrules: the object
    the record names is delivered, and the hinted read is read back all the same."""
    key = event()
    labels = published_labels(backends, key)
    received = datetime.fromisoformat(labels["received_at"])
    labels["received_at"] = (received - timedelta(days=1)).isoformat()
    name = backends.record(key)["raw_uri"].split("/", 3)[3]
    reads = RawReads(runtime())
    assert push(deliver_app, key, attributes=labels) == 204
    hinted = reads.seen[0][1]
    assert hinted != name
    assert reads.seen == [("gcs", hinted), ("record", key), ("gcs", name)]
    assert reads.unread == []
    assert backends.record(key)["status"] == "delivered"
    assert wp.posted()["status"] == "payment_intent.succeeded"


def test_a_push_that_needs_no_payload_still_reads_the_hinted_read_back(
    deliver_app, runtime, wp, event, backends
):
    """Already delivered, paused, unknown: the object's read was sent with the record's; its
    answer is read and dropped, so its connection goes back to the pool."""
    key = event()
    labels = published_labels(backends, key)
    assert push(deliver_app, key, attributes=labels) == 204
    reads = RawReads(runtime())
    assert push(deliver_app, key, attributes=labels) == 204  # already delivered
    assert len(wp.requests) == 1
    assert [kind for kind, _ in reads.seen] == ["gcs", "record"]
    assert reads.unread == []

    gone = {**labels, "event_key": "0" * 64}
    assert push(deliver_app, "0" * 64, attributes=gone) == 204  # unknown
    assert [kind for kind, _ in reads.seen] == ["gcs", "record", "gcs", "record"]
    assert reads.unread == []

    # Paused by the control document, not yet read by this instance: the read was sent.
    control = backends.db.collection("control").document(CONTROL_DOCUMENT)
    control.set({"paused": True})
    try:
        reads = RawReads(runtime())
        held = event()
        assert push(deliver_app, held, attributes=published_labels(backends, held)) == 204
        assert backends.record(held)["status"] == "held"
        assert [kind for kind, _ in reads.seen][:2] == ["gcs", "record"]
        assert reads.unread == []
    finally:
        control.set({"paused": False})
    assert len(wp.requests) == 1


def test_no_payload_is_read_while_deliveries_are_known_to_be_paused(
    deliver_app, runtime, wp, event, backends
):
    """Paused by the environment (or a switch read within its TTL): every push is held
    without reading its object, however many wait out a WordPress maintenance."""
    reads = RawReads(runtime(PAUSE_WP_DELIVERY="true"))
    for _ in range(2):
        key = event()
        assert push(deliver_app, key, attributes=published_labels(backends, key)) == 204
        assert backends.record(key)["status"] == "held"
    assert [kind for kind, _ in reads.seen if kind == "gcs"] == []
    assert wp.requests == []


def test_a_labelled_push_waits_for_one_read_round_trip_not_two(
    deliver_app, runtime, wp, event, backends, monkeypatch
):
    """With every Firestore and Cloud Storage request 100 ms away (a network, as in the
    cloud, where a push's wall time is what an instance of concurrency 1 is billed for and
    what bounds the drain), a push whose labels name the object waits ~100 ms less than
    one without: the two reads overlap on the wire."""
    keys = [event() for _ in range(7)]
    labels = {json.loads(m.data)["event_key"]: dict(m.attributes) for m in backends.messages()}
    delay = 0.1
    proxies = []
    for variable in ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
        upstream = os.environ[variable].split("://")[-1].rstrip("/")
        proxies.append(LatencyProxy(upstream, delay).start())
        monkeypatch.setenv(variable, proxies[-1].address)
    try:
        runtime()
        assert push(deliver_app, keys[0], attributes=labels[keys[0]]) == 204  # connections made
        took: dict[bool, list[float]] = {True: [], False: []}
        for i, key in enumerate(keys[1:]):
            labelled = i % 2 == 0
            started = time.perf_counter()
            assert push(deliver_app, key, attributes=labels[key] if labelled else None) == 204
            took[labelled].append(time.perf_counter() - started)
    finally:
        for proxy in proxies:
            proxy.close()
    assert all(backends.record(k)["status"] == "delivered" for k in keys)
    with_labels, without = statistics.median(took[True]), statistics.median(took[False])
    # The record's read ∥ the object's read, then the commit: two delays; without: three.
    assert with_labels >= 2 * delay, took
    assert without - with_labels > 0.6 * delay, took


def test_a_failed_attempt_is_recorded_without_reading_the_record_again(
    deliver_app, runtime, wp, event, backends
):
    """The record read at the start of the push is the precondition of the failure's
    write: one Firestore read per push, also when WordPress fails (a retry storm during an
    outage reads no more than a delivery does)."""
    key = event()
    reads = RawReads(runtime())
    wp.script = [503]
    assert push(deliver_app, key) == 503
    assert [kind for kind, _ in reads.seen] == ["record", "gcs"]
    record = backends.record(key)
    assert (record["status"], record["attempts"], record["downstream_status"]) == (
        "published",
        1,
        503,
    )
    wp.script = [422]
    assert push(deliver_app, key) == 204
    assert [kind for kind, _ in reads.seen] == ["record", "gcs"] * 2
    assert (backends.record(key)["status"], backends.record(key)["attempts"]) == ("failed", 2)


def test_the_breaker_stops_calling_a_failing_wordpress(deliver_app, runtime, wp, event, backends):
    keys = [event() for _ in range(5)]
    wp.script = [503, 503, 503]
    codes = [push(deliver_app, k) for k in keys]
    assert codes == [503] * 5
    assert len(wp.requests) == 3  # threshold 3: the last two never reached WordPress
    assert backends.record(keys[4])["attempts"] == 0


def test_the_dead_letter_push_marks_the_event_dead(deliver_app, runtime, wp, event, backends):
    key = event()
    wp.script = [503]
    assert push(deliver_app, key) == 503
    assert push(deliver_app, key, path="/dead") == 204
    record = backends.record(key)
    assert record["status"] == "dead"
    assert record["last_error"] == "attempts_exhausted"
    assert len(wp.requests) == 1


def test_a_delivered_event_is_never_marked_dead(deliver_app, runtime, wp, event, backends):
    key = event()
    assert push(deliver_app, key) == 204
    assert push(deliver_app, key, path="/dead") == 204
    assert backends.record(key)["status"] == "delivered"


@pytest.mark.parametrize(
    ("verdict", "reason"), [("failed", "422"), ("held", "paused"), ("dead", "attempts_exhausted")]
)
def test_a_dead_letter_leaves_a_verdict_it_reads_as_it_stands(
    deliver_app, runtime, wp, event, backends, capsys, verdict, reason
):
    """DESIGN's status machine: failed and held leave only by replay. A dead letter for an
    event another push already settled (Pub/Sub delivers at least once: a copy nacked five
    times while another was answered) must not turn it into ``dead`` and hide the reason
    on-call needs: WordPress's 422 is the story, not exhausted attempts, and a held event
    marked dead would be skipped by the resume that replays the held ones."""
    if verdict == "held":
        runtime(PAUSE_WP_DELIVERY="1")
    key = event()
    if verdict == "failed":
        wp.script = [422]
    elif verdict == "dead":
        wp.script = [503]
    assert push(deliver_app, key) == (503 if verdict == "dead" else 204)
    if verdict == "dead":
        assert push(deliver_app, key, path="/dead") == 204
    before = backends.record(key)
    assert before["status"] == verdict
    capsys.readouterr()
    assert push(deliver_app, key, path="/dead") == 204  # acked: nothing left to do
    line = _log_line(key, capsys)
    assert line["outcome"] == "already_settled"
    assert line["reason"] == f"already_{verdict}"
    assert line["severity"] == "INFO"  # the verdict alerted (failed) or was chosen (held)
    after = backends.record(key)
    assert after["status"] == verdict
    assert reason in str(after["last_error"])
    assert after["updated_at"] == before["updated_at"]  # not written at all


def test_a_missing_raw_payload_is_a_permanent_failure(deliver_app, runtime, wp, event, backends):
    key = event()
    backends.bucket.blob(backends.record(key)["raw_uri"].split("/", 3)[3]).delete()
    assert push(deliver_app, key) == 204
    record = backends.record(key)
    assert (record["status"], record["last_error"]) == ("failed", "raw_payload_missing")
    assert wp.requests == []


def test_an_unknown_key_is_acked(deliver_app, runtime, wp):
    assert push(deliver_app, "0" * 64) == 204
    assert wp.requests == []


@pytest.mark.parametrize(
    "body", [b"not json", b"{}", b'{"message": {"data": "bm90IGpzb24="}}', b'{"message": {}}']
)
def test_a_malformed_envelope_is_400(deliver_app, runtime, body):
    resp = deliver_app.test_client().post("/", data=body)
    assert resp.status_code == 400


def test_only_post(deliver_app, runtime):
    assert deliver_app.test_client().get("/").status_code == 405


def test_oidc_is_enforced_at_the_entry_point(deliver_app, deliver_env, wp, event):
    from tests.unit.test_oidc import AUDIENCE, PUSH_SA, Keys

    keys = Keys("kid-1")
    env = {
        **deliver_env,
        "HOOKPRESS_PUSH_AUTH": "oidc",
        "HOOKPRESS_PUSH_AUDIENCE": AUDIENCE,
        "HOOKPRESS_PUSH_SERVICE_ACCOUNT": PUSH_SA,
    }
    certs = deliver.CertsCache(lambda: ({"kid-1": keys.cert_pem}, 3600.0))
    deliver.install(deliver.build_runtime(env, certs=certs))
    try:
        key = event()
        assert push(deliver_app, key) == 401
        assert push(deliver_app, key, Authorization="Bearer junk") == 401
        other = keys.token(email="other@proj.iam.gserviceaccount.com")
        assert push(deliver_app, key, Authorization=f"Bearer {other}") == 403
        assert wp.requests == []
        assert push(deliver_app, key, Authorization=f"Bearer {keys.token()}") == 204
        assert len(wp.requests) == 1
    finally:
        deliver.install(None)


def test_push_auth_off_is_logged_loudly(deliver_env, capsys):
    deliver.build_runtime(deliver_env)
    out = capsys.readouterr().out
    assert "PUSH AUTHENTICATION IS OFF" in out
    assert json.loads(out.splitlines()[0])["severity"] == "WARNING"


def test_concurrent_updates_never_undo_delivered(deliver_app, runtime, wp, event, backends):
    """A failure recorded late (a duplicate push that timed out) cannot overwrite delivered."""
    key = event()
    rt = runtime()
    # The snapshot a concurrent attempt read before this delivery settles a failure now.
    stale = rt.deliverer.records.get(key)
    assert stale is not None
    assert stale.data["status"] in {"received", "published"}
    assert push(deliver_app, key) == 204
    rt.deliverer._settle(stale, None, last_error="late failure")
    record = backends.record(key)
    assert record["status"] == "delivered"
    assert "last_error" not in record or record["last_error"] is None


@pytest.mark.parametrize(
    ("late", "settled", "reason"),
    [
        ("retry", "failed", "wordpress_rejected"),
        ("retry", "dead", "attempts_exhausted"),
        ("dead", "failed", "wordpress_rejected"),
        ("held", "dead", "attempts_exhausted"),
    ],
)
def test_a_late_write_never_overwrites_a_verdict_recorded_since_its_read(
    deliver_app, runtime, wp, event, backends, late, settled, reason
):
    """Two pushes of one event at once (Pub/Sub delivers at least once): the one that read
    the record first and settles last finds another push's verdict (failed, dead) recorded
    in between. That verdict stands, with its reason; DESIGN's status machine leaves
    failed and dead only by replay."""
    key = event()
    rt = runtime()
    stale = rt.deliverer.records.get(key)
    assert stale is not None
    if settled == "failed":
        wp.script = [422]
        assert push(deliver_app, key) == 204
    else:
        assert push(deliver_app, key, path="/dead") == 204
    record = backends.record(key)
    assert record["status"] == settled
    assert reason in record["last_error"]
    attempts = record.get("attempts")
    if late == "retry":
        rt.deliverer._settle(stale, None, error=RetryableDeliveryError("wordpress_503", status=503))
    elif late == "dead":
        rt.deliverer._settle(stale, Status.DEAD, last_error="attempts_exhausted")
    else:
        rt.deliverer._settle(stale, Status.HELD, last_error="paused")
    record = backends.record(key)
    assert record["status"] == settled
    assert reason in record["last_error"]
    assert record.get("attempts") == attempts


@pytest.mark.parametrize("error", ERRORS)
def test_every_secret_manager_error_is_503_and_leaves_the_breaker_alone(
    deliver_app, runtime, wp, event, backends, deliver_env, error
):
    from hookpress.backends.secrets import CachedSecrets, SecretManagerValues

    project = deliver_env["HOOKPRESS_PROJECT"]
    secret = f"projects/{project}/secrets/wp-app-password"
    fake = BrokenSecretManager(secret_manager_errors()[error], "access", secret)
    rt = runtime()
    values = SecretManagerValues(project, 5, client=fake)  # type: ignore[arg-type]
    rt.deliverer.secrets = CachedSecrets(values, ttl_s=300, min_refresh_interval_s=30)
    key = event()
    assert [push(deliver_app, key) for _ in range(5)] == [503] * 5  # threshold 3
    assert rt.deliverer.breaker.state == "closed"  # not WordPress's fault
    assert wp.requests == []
    assert backends.record(key)["attempts"] == 0

    fake.where = "none"  # Secret Manager is back
    time.sleep(1.1)  # the first back-off after a failed read
    assert push(deliver_app, key) == 204
    assert backends.record(key)["status"] == "delivered"


# -- poison payloads: failed at the first attempt, acked, and the breaker never stuck -------

POISON = {
    "hmac-timestamp": {"status": "done", "created_at": "1e400"},
    "stripe": {"type": "charge.succeeded", "created": 1e20},
    "slack": {"event_id": "Ev1", "event_time": -(10**14)},
    "standard-webhooks": {"type": "x", "created_at": "0001-01-01T00:00:00+14:00"},
}


@pytest.mark.parametrize("source", sorted(POISON))
def test_a_poison_payload_is_failed_at_the_first_attempt_and_acked(
    deliver_app, runtime, wp, event, backends, source
):
    fields = POISON[source]
    if source == "slack":
        fields = {**fields, "event_id": f"Ev{time.monotonic_ns()}"}
    key = event(source, unique_body("poison", **fields))
    assert push(deliver_app, key) == 204
    record = backends.record(key)
    assert record["status"] == "failed"
    assert record["attempts"] == 1
    assert record["last_error"] == "unusable_payload:occurred_at_out_of_range"
    assert wp.requests == []
    assert push(deliver_app, key) == 204  # a redelivery changes nothing
    assert backends.record(key)["attempts"] == 2
    assert runtime().deliverer.breaker.state == "closed"


def test_a_transform_that_raises_fails_the_event_not_the_instance(
    deliver_app, runtime, wp, event, backends
):
    from hookpress.deliver import transforms

    @transforms.register("hmac-timestamp")
    def broken(e: transforms.Event) -> dict[str, Any]:
        return {"summary": e.payload["missing"]}

    try:
        key = event("hmac-timestamp", unique_body("hooked"))
        assert push(deliver_app, key) == 204
    finally:
        transforms._BY_SOURCE.pop("hmac-timestamp", None)
    record = backends.record(key)
    assert (record["status"], record["last_error"]) == (
        "failed",
        "unusable_payload:transform_failed:KeyError",
    )
    assert push(deliver_app, event()) == 204  # the next event is delivered
    assert len(wp.requests) == 1


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_half_open_breakers_probe_is_never_lost(
    deliver_app, runtime, wp, event, backends, deliver_env, monkeypatch
):
    """Poison, a secrets outage, a bug: none of them may keep the one probe slot taken."""
    from hookpress.backends.secrets import CachedSecrets, SecretManagerValues
    from hookpress.deliver import Breaker

    rt = runtime()
    clock = Clock()
    rt.deliverer.breaker = Breaker(3, 60, clock)
    wp.script = [503, 503, 503]
    assert [push(deliver_app, event()) for _ in range(3)] == [503] * 3
    assert rt.deliverer.breaker.state == "open"
    clock.t = 60  # cooled down: the next call that reaches WordPress is the probe

    poison = event("stripe", unique_body("poison", type="x", created=1e20))
    assert push(deliver_app, poison) == 204  # failed without asking the breaker
    assert backends.record(poison)["status"] == "failed"

    good_secrets = rt.deliverer.secrets
    project = deliver_env["HOOKPRESS_PROJECT"]
    fake = BrokenSecretManager(
        secret_manager_errors()["RefreshError"],
        "access",
        f"projects/{project}/secrets/wp-app-password",
    )
    rt.deliverer.secrets = CachedSecrets(
        SecretManagerValues(project, 5, client=fake),  # type: ignore[arg-type]
        ttl_s=300,
        min_refresh_interval_s=30,
    )
    assert push(deliver_app, event()) == 503  # took the slot, then the secrets failed
    rt.deliverer.secrets = good_secrets

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in a transport")  # not a transport error: unforeseen

    with monkeypatch.context() as patch:
        patch.setattr(rt.deliverer.wordpress._endpoint, "request", bug)
        assert push(deliver_app, event()) == 500
    assert rt.deliverer.breaker.state == "half-open"

    key = event()
    assert push(deliver_app, key) == 204  # the probe still happens, and closes the breaker
    assert backends.record(key)["status"] == "delivered"
    assert rt.deliverer.breaker.state == "closed"


def _joined(threads: list[Any]) -> list[str]:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return sorted(thread.name for thread in threads)


def test_a_warmed_instance_posts_its_first_push_on_what_it_opened_and_read_ahead(
    deliver_app, runtime, wp, event, backends, deliver_env
):
    """An instance's first push starts, in threads, what it would otherwise wait for in
    turn: Firestore's and Cloud Storage's connections, WordPress's, and the password."""
    rt = runtime()  # a fresh instance
    key = event()
    assert _joined(rt.deliverer.warm()) == [
        "prefetch-secret",
        "warm-firestore",
        "warm-firestore",
        "warm-gcs",
        "warm-wordpress",
    ]
    deadline = time.monotonic() + 5  # connected; WordPress's thread takes it a moment later
    while wp.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (wp.connections, wp.requests) == (1, [])  # connected, nothing sent
    # the password was read ahead: replace it now, and the push posts the one read then
    Path(deliver_env["HOOKPRESS_SECRETS_FILE"]).write_text(
        json.dumps({"wp-app-password": ["pw-2"]})
    )
    assert push(deliver_app, key, attributes=published_labels(backends, key)) == 204
    assert backends.record(key)["status"] == "delivered"
    assert wp.connections == 1  # the post went out on the warmed connection
    basic = wp.requests[0].headers["Authorization"].split()[1]
    assert base64.b64decode(basic).decode() == "hookpress-ingest:pw-1"


def test_a_paused_instance_warms_no_wordpress_connection_and_reads_no_password(runtime, wp):
    rt = runtime(PAUSE_WP_DELIVERY="1")
    assert _joined(rt.deliverer.warm()) == ["warm-firestore", "warm-firestore", "warm-gcs"]
    assert wp.connections == 0
