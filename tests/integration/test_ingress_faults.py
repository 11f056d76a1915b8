"""Backend failures: 503 + Retry-After, never a 202 for an event that is not durable,
and a publish lost after the record was created is recovered by the provider's retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from hookpress import ingress
from hookpress.backends import BackendError
from hookpress.backends.gcs import RawStore
from hookpress.ingress import Ingestor
from tests.conftest import FUNCTIONS
from tests.integration.conftest import Backends, http_client, signed, unique_body
from tests.secretmanager_fake import ERRORS, BrokenSecretManager, secret_manager_errors


class Flaky:
    """Wraps a real adapter; its next ``failures`` calls of ``method`` raise BackendError."""

    def __init__(self, inner: Any, method: str, backend: str, failures: int = 1) -> None:
        self._inner = inner
        self._method = method
        self._backend = backend
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise BackendError(self._backend, "injected")
            return attr(*args, **kwargs)

        return wrapped


def send(app: Any, body: bytes, source: str = "stripe") -> Any:
    return http_client(app).post(f"/{source}", content=body, headers=signed(source, body))


def assert_unavailable(resp: Any) -> None:
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    assert resp.json() == {"status": "unavailable", "error": "temporarily unavailable"}


def test_publish_lost_after_create_is_republished_exactly_once_by_the_retry(
    app, ingestor, use, backends: Backends
):
    body = unique_body()
    publisher = Flaky(ingestor.publisher, "publish", "pubsub")
    use(publisher=publisher)

    first = send(app, body)
    assert_unavailable(first)
    assert backends.messages(settle_s=0.5) == []
    keys = backends.record_keys()
    key = next(k for k in keys if backends.record(k)["provider_event_id"] == json.loads(body)["id"])
    record = backends.record(key)
    assert record["status"] == "received"  # durable, not yet published
    assert backends.object(record["raw_uri"].split("/", 3)[3]) == body

    retry = send(app, body)  # the provider's retry
    assert retry.status_code == 200
    assert retry.json() == {"status": "duplicate", "event_id": key}
    assert backends.record(key)["status"] == "published"
    messages = backends.messages()
    assert [json.loads(m.data)["event_key"] for m in messages] == [key]

    again = send(app, body)  # and once published, never again
    assert again.status_code == 200
    assert backends.messages(settle_s=0.5) == []


def test_gcs_failure_is_503_and_the_retry_stores_the_bytes(app, ingestor, use, backends):
    """The upload cannot be sent: nothing is created, the provider's retry does it all."""
    body = unique_body()
    use(raw=Flaky(ingestor.raw, "start_put", "gcs"))
    assert_unavailable(send(app, body))
    assert backends.messages(settle_s=0.5) == []

    use()  # GCS is back
    resp = send(app, body)
    assert resp.status_code == 202
    key = resp.json()["event_id"]
    record = backends.wait_status(key, "published")
    assert backends.object(record["raw_uri"].split("/", 3)[3]) == body
    assert len(backends.messages()) == 1


class AnswerLost:
    """Wraps the raw store: the upload is sent (and stored), then its answer is lost."""

    def __init__(self, inner: RawStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def start_put(self, *args: Any, **kwargs: Any) -> Any:
        finish = self._inner.start_put(*args, **kwargs)

        def lost() -> bool:
            finish()
            raise BackendError("gcs", "injected: answer lost")

        return lost


def test_a_gcs_answer_lost_after_the_create_is_503_and_the_retry_publishes_at_once(
    app, ingestor, use, backends
):
    """The record was created with our claim; the 503 releases it, so the retry need not wait."""
    body = unique_body()
    use(raw=AnswerLost(ingestor.raw))
    assert_unavailable(send(app, body))
    assert backends.messages(settle_s=0.5) == []

    use()
    resp = send(app, body)
    assert resp.status_code == 200
    assert resp.json()["status"] == "duplicate"
    key = resp.json()["event_id"]
    assert backends.record(key)["status"] == "published"  # published by this retry, not later
    assert len(backends.messages()) == 1


def test_a_missing_bucket_is_503_not_500(app, ingestor, use, backends):
    use(raw=RawStore(ingestor.settings.project, "no-such-bucket", 5))
    before = backends.record_keys()
    assert_unavailable(send(app, unique_body()))
    assert backends.messages(settle_s=0.5) == []
    assert len(backends.record_keys() - before) <= 1  # maybe a received record, never published


def test_firestore_failure_is_503_and_nothing_is_published(app, ingestor, use, backends):
    records = Flaky(ingestor.records, "create", "firestore")
    use(records=records)
    body = unique_body()
    assert_unavailable(send(app, body))
    assert backends.messages(settle_s=0.5) == []
    assert send(app, body).status_code == 202  # the provider's retry goes through


def test_secret_store_failure_is_503(app, ingestor, use, backends):
    from hookpress.backends.secrets import CachedSecrets

    class Down:
        def fetch(self, name: str) -> tuple[str, ...]:
            raise BackendError("secretmanager", "Unavailable")

    use(secrets=CachedSecrets(Down(), ttl_s=300, min_refresh_interval_s=30))
    assert_unavailable(send(app, unique_body()))
    assert backends.messages(settle_s=0.5) == []


def test_misconfiguration_is_503_with_a_log_line_naming_the_variable(app, capsys):
    ingress.install(None)
    saved = os.environ.pop("HOOKPRESS_SOURCES", None)
    try:
        resp = http_client(app).post("/stripe", content=b"{}")
    finally:
        if saved is not None:
            os.environ["HOOKPRESS_SOURCES"] = saved
    assert resp.status_code == 503
    assert "Retry-After" in resp.headers
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert any(
        r["severity"] == "CRITICAL" and "HOOKPRESS_SOURCES is not set" in r["message"]
        for r in lines
    )


def test_importing_main_reads_no_environment_and_builds_no_client(tmp_path):
    """functions-framework imports main at start-up; nothing may happen there."""
    probe = textwrap.dedent(
        f"""
        import os, sys
        read = []
        class Watch(dict):
            def __getitem__(self, k):
                read.append(k); return super().__getitem__(k)
            def get(self, k, d=None):
                read.append(k); return super().get(k, d)
        os.environ = Watch(os.environ)
        sys.path.insert(0, {str(FUNCTIONS / "ingress")!r})
        import main
        from google.cloud import firestore, storage, pubsub_v1
        ours = [k for k in read if k.startswith(("HOOKPRESS", "GOOGLE_CLOUD", "PAUSE"))]
        assert not ours, ours
        import hookpress.ingress as ing
        assert not ing._instance.built
        print("ok")
        """
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(FUNCTIONS)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


class Slow:
    """Wraps a real adapter; ``method`` takes ``delay`` seconds longer, and records when it ran."""

    def __init__(self, inner: Any, method: str, delay: float) -> None:
        self._inner, self._method, self._delay = inner, method, delay
        self.spans: list[tuple[float, float]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            import time

            start = time.monotonic()
            time.sleep(self._delay)
            try:
                return attr(*args, **kwargs)
            finally:
                self.spans.append((start, time.monotonic()))

        return wrapped


class Sent:
    """Wraps the raw store; records when the upload went out and when its answer was taken."""

    def __init__(self, inner: RawStore) -> None:
        self._inner = inner
        self.sent: list[float] = []
        self.answered: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def start_put(self, *args: Any, **kwargs: Any) -> Any:
        import time

        finish = self._inner.start_put(*args, **kwargs)
        self.sent.append(time.monotonic())

        def done() -> bool:
            result = finish()
            self.answered.append(time.monotonic())
            return bool(result)

        return done


def test_the_gcs_write_and_the_firestore_create_overlap(app, ingestor, use, backends):
    """The upload is on the wire for the whole of the (slowed) Firestore create."""
    raw = Sent(ingestor.raw)
    records = Slow(ingestor.records, "create", 0.4)
    use(raw=raw, records=records)
    assert send(app, unique_body()).status_code == 202
    (fs_start, fs_end) = records.spans[0]
    assert raw.sent[0] <= fs_start  # sent before the create began
    assert raw.answered[0] >= fs_end  # and its answer taken only once the create was done


def test_the_raw_object_is_create_only(ingestor, backends):
    """if_generation_match=0: a second write of the same name is refused, the first bytes stay."""
    name = "raw/stripe/2026/01/01/" + "ab" * 32 + ".json"
    assert ingestor.raw.put(name, b'{"first": true}') is True
    assert ingestor.raw.put(name, b'{"second": true}') is False
    assert backends.object(name) == b'{"first": true}'


# -- Secret Manager: every error is a 503, and no caller can drive its reads ---------------


def _secret_manager(ingestor: Ingestor, fake: Any, ttl_s: float = 300) -> Any:
    from hookpress.backends.secrets import CachedSecrets, SecretManagerValues

    values = SecretManagerValues(ingestor.settings.project, 5, client=fake)
    return CachedSecrets(values, ttl_s=ttl_s, min_refresh_interval_s=30)


@pytest.mark.parametrize("error", ERRORS)
def test_every_secret_manager_error_is_503_never_500(app, ingestor, use, backends, error):
    secret = f"projects/{ingestor.settings.project}/secrets/src-stripe"
    fake = BrokenSecretManager(secret_manager_errors()[error], "access", secret)
    use(secrets=_secret_manager(ingestor, fake))
    assert_unavailable(send(app, unique_body()))
    assert backends.messages(settle_s=0.2) == []


def test_no_credentials_at_all_is_503(app, ingestor, use, monkeypatch, tmp_path):
    """The client cannot even be built (google.auth.default() finds nothing)."""
    from hookpress.backends.secrets import CachedSecrets, SecretManagerValues

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    values = SecretManagerValues(ingestor.settings.project, 5)
    use(secrets=CachedSecrets(values, ttl_s=300, min_refresh_interval_s=30))
    assert_unavailable(send(app, unique_body()))


class CountingSecretManager(BrokenSecretManager):
    """The fake store holding the stripe source's secret; counts reads; can go down."""

    def __init__(self) -> None:
        from google.api_core import exceptions as gexc

        super().__init__(gexc.ServiceUnavailable("down"), "none")
        self.reads = 0

    def list_secret_versions(self, request: dict[str, Any], timeout: float) -> Any:
        self.reads += 1
        return super().list_secret_versions(request, timeout)


def test_bad_signatures_cannot_drive_secret_manager_reads(app, ingestor, use, backends):
    from tests.integration.conftest import SECRETS

    fake = CountingSecretManager()
    parent = f"projects/{ingestor.settings.project}/secrets/src-stripe"
    fake.versions = {parent: [(1, "ENABLED", SECRETS["stripe"][0])]}
    use(secrets=_secret_manager(ingestor, fake, ttl_s=0.5))
    assert send(app, unique_body()).status_code == 202  # the first read
    body = unique_body()
    forged = {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={int(time.time())},v1=" + "0" * 64,
    }
    client = http_client(app)
    codes = [client.post("/stripe", content=body, headers=forged).status_code for _ in range(100)]
    assert codes == [401] * 100
    assert fake.reads <= 2  # one re-read after a failed check, then none for 30 s

    fake.where = "list"  # Secret Manager goes down; the cache (TTL 0.5 s) goes stale
    time.sleep(0.6)
    before = fake.reads
    codes = [client.post("/stripe", content=body, headers=forged).status_code for _ in range(100)]
    assert codes == [401] * 100  # checked against the stale secret, not 503
    good = unique_body()
    assert send(app, good).status_code == 202  # genuine events still go through
    assert fake.reads - before <= 2  # one failed read, then back-off
