"""The reconciler against the real emulators: stuck records published once, stale ones reported."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hookpress import ingress, reconcile
from hookpress.backends import BackendError
from hookpress.logs import Logger
from hookpress.publication import Publication
from hookpress.reconcile import Reconciler
from hookpress.settings import ReconcileSettings
from tests.conftest import FUNCTIONS
from tests.integration.conftest import Backends, http_client, signed, unique_body, variant
from tests.integration.test_ingress_faults import Flaky


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reconciler(ingestor, clock) -> Reconciler:
    settings = ReconcileSettings(
        project=ingestor.settings.project, stuck_after_s=300, stale_after_s=3600, batch=1000
    )
    log = Logger("reconcile")
    return Reconciler(
        settings,
        records=ingestor.records,
        publication=Publication(ingestor.records, ingestor.publisher, lease_s=21, log=log),
        log=log,
        clock=clock,
    )


def stuck_event(app: Any, ingestor) -> str:
    """An event whose publish failed after the record was created (the provider never retries)."""
    ingress.install(variant(ingestor, publisher=Flaky(ingestor.publisher, "publish", "pubsub")))
    try:
        body = unique_body()
        resp = http_client(app).post("/stripe", content=body, headers=signed("stripe", body))
        assert resp.status_code == 503
    finally:
        ingress.install(None)
    key = [
        k
        for k, v in ((d.id, d.to_dict()) for d in ingestor.records.collection().stream())
        if v["provider_event_id"] == json.loads(body)["id"]
    ]
    return key[0]


def test_a_stuck_record_is_published_once(app, ingestor, reconciler, clock, backends: Backends):
    key = stuck_event(app, ingestor)
    assert backends.record(key)["status"] == "received"

    assert reconciler.sweep().republished == 0  # not stuck yet: the provider may still retry
    clock.offset = 301
    report = reconciler.sweep()
    assert report.republished >= 1
    assert backends.record(key)["status"] == "published"
    keys = [json.loads(m.data)["event_key"] for m in backends.messages()]
    assert keys.count(key) == 1
    assert reconciler.sweep().republished == 0  # and never again
    assert backends.messages(settle_s=0.5) == []


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(
    ingestor, reconciler, clock, backends: Backends
):
    """The creator died holding its claim: the sweep waits out the lease, then publishes."""
    from datetime import UTC, datetime, timedelta

    from hookpress.events import event_key, new_record

    key = event_key("stripe", f"evt_{time.monotonic_ns()}")
    old = datetime.now(UTC) - timedelta(seconds=400)
    record = new_record(
        source="stripe", scheme="stripe", provider_id="p", received_at=old,
        raw_uri="gs://hookpress-raw-test/x", body_sha256="h", ttl_days=30,
    )  # fmt: skip
    record["publish_claimed_at"] = datetime.now(UTC)  # claimed a moment ago
    ingestor.records.create(key, record)
    assert key not in {json.loads(m.data)["event_key"] for m in backends.messages(0.3)}
    reconciler.sweep()
    assert backends.record(key)["status"] == "received"  # the claim is live
    clock.offset = 30  # past the 21 s lease
    reconciler.sweep()
    assert backends.record(key)["status"] == "published"
    assert [json.loads(m.data)["event_key"] for m in backends.messages()].count(key) == 1


def test_stale_published_records_are_reported(
    client, ingestor, reconciler, clock, capsys, backends
):
    body = unique_body()
    key = client.post("/stripe", content=body, headers=signed("stripe", body)).json()["event_id"]
    backends.wait_status(key, "published")
    capsys.readouterr()
    clock.offset = 3601
    report = reconciler.sweep()
    assert report.stale >= 1
    assert key in report.stale_sample or report.stale > len(report.stale_sample)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    alert = [x for x in lines if x.get("outcome") == "stale_published"]
    assert alert
    assert alert[0]["severity"] == "ERROR"


def test_a_publish_failure_leaves_the_record_for_the_next_sweep(
    app, ingestor, reconciler, clock, backends: Backends
):
    key = stuck_event(app, ingestor)
    clock.offset = 301
    reconciler.publication.publisher = Flaky(
        ingestor.publisher, "publish", "pubsub", failures=10**6
    )
    reconciler.sweep()
    assert backends.record(key)["status"] == "received"
    reconciler.publication.publisher = ingestor.publisher
    reconciler.sweep()
    assert backends.record(key)["status"] == "published"


def test_the_entry_point_sweeps_and_answers_json(ingress_env):
    import functions_framework

    app = functions_framework.create_app(
        target="reconcile", source=str(FUNCTIONS / "reconcile" / "main.py")
    )
    env = {k: ingress_env[k] for k in ("HOOKPRESS_PROJECT", "HOOKPRESS_EVENTS_TOPIC")}
    env["HOOKPRESS_PUSH_AUTH"] = "none"  # the caller check has its own tests (test_oidc.py)
    reconcile.install(reconcile.build_reconciler(env))
    try:
        resp = app.test_client().post("/", json={})
        assert resp.status_code == 200
        assert set(resp.get_json()) == {"stuck", "republished", "stale", "stale_sample"}
        assert app.test_client().get("/").status_code == 405
    finally:
        reconcile.install(None)


def test_a_backend_failure_is_503(ingress_env):
    import functions_framework

    class Down:
        def with_status(self, *a: Any, **k: Any) -> Any:
            raise BackendError("firestore", "Unavailable")

    app = functions_framework.create_app(
        target="reconcile", source=str(FUNCTIONS / "reconcile" / "main.py")
    )
    settings = ReconcileSettings(project=ingress_env["HOOKPRESS_PROJECT"])
    log = Logger("reconcile")
    reconcile.install(Reconciler(settings, records=Down(), publication=None, log=log))  # type: ignore[arg-type]
    try:
        assert app.test_client().post("/", json={}).status_code == 503
    finally:
        reconcile.install(None)


def test_replay_republishes_a_published_record_only_when_stale(
    client, ingestor, reconciler, backends: Backends
):
    body = unique_body()
    key = client.post("/stripe", content=body, headers=signed("stripe", body)).json()["event_id"]
    assert len(backends.messages()) == 1
    backends.wait_status(key, "published")
    publication = reconciler.publication
    snapshot = ingestor.records.get(key)
    now = time.time()
    assert publication.replay(snapshot, now) is False  # published: on its way
    assert publication.replay(snapshot, now, stale_published_s=3600) is False  # not stale yet
    assert publication.replay(snapshot, now + 3601, stale_published_s=3600) is True
    assert [json.loads(m.data)["event_key"] for m in backends.messages()] == [key]
    assert backends.record(key)["replayed_from"] == "published"
