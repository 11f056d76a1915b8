"""The whole pipeline against real parts: signed webhook in, one WordPress post out.

Ingress and deliver run under functions-framework (gunicorn) as separate
processes; Pub/Sub pushes to deliver with a retry policy and a dead-letter
policy (5 attempts); deliver reaches the real WordPress through a fault proxy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest
from google.cloud import firestore, pubsub_v1

from hookpress.backends.pubsub import EventPublisher
from hookpress.local.emulators import Emulators
from hookpress.local.stack import DEAD_PULL_SUBSCRIPTION, SCHEME_SOURCES, LocalStack, StackOptions
from hookpress.local.wordpress import WordPressServer
from hookpress.signatures import SCHEMES
from tests.e2e.cli_harness import wait_for


@pytest.fixture(scope="module")
def stack(
    emulators: Emulators,
    wordpress_server: WordPressServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalStack]:
    options = StackOptions(
        sources=dict(SCHEME_SOURCES),
        wp_read_timeout_s=3,
        breaker_threshold=1000,  # the breaker has its own tests; here it would slow recovery
        extra_deliver_env={"HOOKPRESS_CONTROL_TTL_S": "0.5"},
    )
    local = LocalStack(
        tmp_path_factory.mktemp("stack"), options, emulators=emulators, wordpress=wordpress_server
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def no_faults(stack: LocalStack) -> Iterator[None]:
    assert stack.proxy is not None
    stack.proxy.clear()
    yield
    stack.proxy.clear()


@pytest.fixture(scope="module")
def db(stack: LocalStack) -> firestore.Client:
    return firestore.Client(project=stack.options.project)


def send(stack: LocalStack, source: str, body: bytes, **sign: Any) -> httpx.Response:
    secret = stack.source_secrets[source][0]
    headers = SCHEMES[stack.options.sources[source]].sign(body, secret, now=time.time(), **sign)
    assert stack.ingress is not None
    return httpx.post(
        f"{stack.ingress.url}/{source}",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )


def webhook(**fields: Any) -> tuple[str, bytes]:
    external_id = f"evt_{time.monotonic_ns()}"
    body = {"id": external_id, "status": "completed", "summary": "Batch finished", **fields}
    return external_id, json.dumps(body).encode()


def record(db: firestore.Client, key: str) -> dict[str, Any]:
    return db.collection("events").document(key).get().to_dict() or {}


def status_is(db: firestore.Client, key: str, status: str) -> Callable[[], bool]:
    return lambda: record(db, key).get("status") == status


def test_a_signed_webhook_becomes_one_post_with_the_right_fields(stack, db, find_events):
    external_id, body = webhook(
        summary="Batch finished: 3 of 3",
        metadata={"model": "gpt-x", "batch": 7},
        occurred_at="2026-03-04T05:06:07Z",
    )
    resp = send(stack, "hmac-timestamp", body)
    assert resp.status_code == 202, resp.text
    key = resp.json()["event_id"]

    posts = wait_for(lambda: find_events(external_id), "the post")
    assert len(posts) == 1
    meta = posts[0]["meta"]
    assert meta["external_id"] == external_id
    assert meta["source"] == "hmac-timestamp"
    assert meta["status"] == "completed"
    assert meta["summary"] == "Batch finished: 3 of 3"
    assert meta["occurred_at"] == "2026-03-04T05:06:07Z"
    assert json.loads(meta["metadata"]) == {"model": "gpt-x", "batch": 7}

    wait_for(status_is(db, key, "delivered"), "status delivered")
    rec = record(db, key)
    assert rec["wp_post_id"] == posts[0]["id"]
    assert rec["downstream_status"] == 201
    assert rec["attempts"] == 1


@pytest.mark.parametrize("source", ["stripe", "standard-webhooks", "github", "slack", "shopify"])
def test_every_scheme_arrives(stack, db, source):
    body = json.dumps(
        {"id": f"evt_{time.monotonic_ns()}", "event_id": f"Ev{time.monotonic_ns()}", "type": "x.y"}
    ).encode()
    resp = send(stack, source, body)
    assert resp.status_code == 202, resp.text
    key = resp.json()["event_id"]
    wait_for(status_is(db, key, "delivered"), f"{source} delivered")


def test_the_same_webhook_five_times_sequentially_and_concurrently_is_one_post(
    stack, db, find_events
):
    """Ten requests, two events: each stored and published once, forwarded to WordPress once.

    The post count alone cannot fail (the plugin keeps one post per external id whatever
    reaches it), so the test counts what would differ: the ingress's answers, the requests
    the fault proxy forwarded to WordPress, and each record's delivery attempts.
    """
    forwarded_before = stack.proxy.snapshot()["forwarded"]
    external_id, body = webhook()
    sequential = [send(stack, "stripe", body) for _ in range(5)]
    assert [r.status_code for r in sequential] == [202, 200, 200, 200, 200]

    external_id2, body2 = webhook()
    with ThreadPoolExecutor(5) as pool:
        concurrent = list(pool.map(lambda _: send(stack, "stripe", body2), range(5)))
    assert sorted(r.status_code for r in concurrent) == [200, 200, 200, 200, 202]

    keys = {sequential[0].json()["event_id"], concurrent[0].json()["event_id"]}
    assert {r.json()["event_id"] for r in sequential + concurrent} == keys
    for key in keys:
        wait_for(status_is(db, key, "delivered"), f"{key} delivered")
    time.sleep(2)  # a stray second publish or redelivery would reach the proxy by now
    assert stack.proxy.snapshot()["forwarded"] - forwarded_before == 2
    assert [record(db, key)["attempts"] for key in keys] == [1, 1]
    assert len(find_events(external_id)) == 1
    assert len(find_events(external_id2)) == 1


def test_deliver_runs_as_deployed_one_process_per_instance(stack, db):
    """Cloud Run runs each deliver instance in its own container, one push at a time
    (deliverConcurrency 1: gunicorn's sync worker, no threads). Locally each instance is
    one worker of deliver's gunicorn: a process of its own, with its own breaker, caches
    and connections, so nothing that works here can lean on memory instances never share.
    """
    assert stack.deliver is not None
    assert stack.deliver.pid is not None
    workers = psutil.Process(stack.deliver.pid).children()
    assert len(workers) == stack.deliver_instances()["normal"] == 8
    assert all(w.num_threads() == 1 for w in workers), "a sync worker serves on one thread"
    before = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
    bodies = [webhook()[1] for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: send(stack, "stripe", body), bodies))
    assert [r.status_code for r in answers] == [202] * 24
    for r in answers:
        wait_for(status_is(db, r.json()["event_id"], "delivered"), "delivered")
    served = [w for w in workers if sum(w.cpu_times()[:2]) > before[w.pid]]
    assert len(served) >= 2, "the pushes were spread over the instances"
    assert all(w.num_threads() == 1 for w in workers), "still one thread after serving"


def test_wordpress_failing_for_a_while_is_delivered_after_it_recovers(stack, db, find_events):
    """A 503, then a timeout, then a 429, then WordPress is back: four attempts, one post."""
    external_id, body = webhook()
    stack.proxy.set(script=[503, "hang", 429], hang_s=5)  # deliver reads for 3 s: a timeout
    key = send(stack, "hmac-timestamp", body).json()["event_id"]
    wait_for(status_is(db, key, "delivered"), "delivery after recovery")
    rec = record(db, key)
    assert rec["attempts"] == 4
    assert rec["downstream_status"] == 201
    assert rec["last_error"] is None
    assert len(find_events(external_id)) == 1
    assert stack.proxy.snapshot()["injected"] == {"503": 1, "hang": 1, "429": 1}


def test_a_permanent_4xx_fails_without_retries(stack, db, find_events):
    stack.proxy.set(fail_next=1, fail_status=422)
    external_id, body = webhook()
    key = send(stack, "hmac-timestamp", body).json()["event_id"]
    wait_for(status_is(db, key, "failed"), "status failed")
    time.sleep(3)  # the emulator retries a nack at once: a retry would have happened by now
    rec = record(db, key)
    assert rec["status"] == "failed"
    assert rec["attempts"] == 1
    assert rec["downstream_status"] == 422
    assert find_events(external_id) == []
    assert stack.proxy.snapshot()["injected"] == {"422": 1}


def test_always_failing_lands_in_the_dead_letter_subscription_as_dead(stack, db, find_events):
    stack.proxy.set(always_status=503)
    external_id, body = webhook()
    key = send(stack, "hmac-timestamp", body).json()["event_id"]
    wait_for(status_is(db, key, "dead"), "status dead", timeout_s=120)
    rec = record(db, key)
    assert rec["attempts"] == 5
    assert rec["last_error"] == "attempts_exhausted"
    assert find_events(external_id) == []

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(stack.options.project, DEAD_PULL_SUBSCRIPTION)

    def dead_letter() -> bool:
        resp = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5)
        found = False
        for m in resp.received_messages:
            if json.loads(m.message.data)["event_key"] == key:
                found = True
                subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id]})
        return found

    wait_for(dead_letter, "the message in the dead-letter subscription")


def test_pause_holds_and_resume_delivers(stack, db, find_events):
    control = db.collection("control").document("delivery")
    control.set({"paused": True})
    try:
        time.sleep(1)  # past the deliver function's control cache (0.5 s here)
        external_id, body = webhook()
        key = send(stack, "hmac-timestamp", body).json()["event_id"]
        wait_for(status_is(db, key, "held"), "status held")
        assert find_events(external_id) == []
    finally:
        control.set({"paused": False})
    time.sleep(1)
    # resume re-publishes what is held
    EventPublisher(stack.options.project, "events", 10).publish(key, "hmac-timestamp")
    wait_for(status_is(db, key, "delivered"), "delivered after resume")
    assert len(find_events(external_id)) == 1


def test_script_in_the_summary_arrives_sanitized(stack, db, find_events, wordpress_server):
    external_id, body = webhook(summary='Done <script>alert("x")</script> ok')
    key = send(stack, "hmac-timestamp", body).json()["event_id"]
    wait_for(status_is(db, key, "delivered"), "delivered")
    post = find_events(external_id)[0]
    assert "<script" not in post["meta"]["summary"].lower()
    stored = wordpress_server.run_php(
        f"$p = get_post({post['id']}); echo $p->post_content, '|', $p->post_title;"
    )
    assert "<script" not in stored.lower()
