"""hookpress.ops against the emulators: selection, replay, rebuild from GCS, dead letters, pause.

Each test gets its own Firestore collection, topic (with a pull subscription
that shows what was published) and dead-letter subscription, so tests never
see each other's events.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import pubsub_v1

from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher
from hookpress.events import event_key, new_record, raw_object_name
from hookpress.local.emulators import Emulators, ensure_bucket, ensure_topic
from hookpress.logs import Logger
from hookpress.ops.control import read_control, set_paused
from hookpress.ops.deadletters import PubSubDeadLetters
from hookpress.ops.replay import Action, RateLimiter, Replayer
from hookpress.ops.selection import Selection, select
from hookpress.publication import Publication

PROJECT = "hookpress-ops"
BUCKET = "hookpress-ops-raw"
NOW = time.time()


@dataclass
class Env:
    records: EventRecords
    raw: RawStore
    publisher: EventPublisher
    subscriber: pubsub_v1.SubscriberClient
    published_sub: str
    dead_topic: str
    dead_sub: str
    collection: str

    def publication(self) -> Publication:
        return Publication(self.records, self.publisher, lease_s=21, log=Logger("test"))

    def replayer(self, **kwargs: Any) -> Replayer:
        return Replayer(self.records, self.publication(), raw=self.raw, **kwargs)

    def published(self, settle_s: float = 1.5) -> list[str]:
        """Event keys published since the last call (pulled and acked)."""
        keys: list[str] = []
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            resp = self.subscriber.pull(
                request={"subscription": self.published_sub, "max_messages": 100}, timeout=1
            )
            if resp.received_messages:
                keys += [m.message.attributes["event_key"] for m in resp.received_messages]
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.published_sub,
                        "ack_ids": [m.ack_id for m in resp.received_messages],
                    }
                )
        return keys

    def record(self, key: str, status: str, *, source: str = "src", age_s: float = 60, **extra):
        received = datetime.fromtimestamp(NOW - age_s, UTC)
        data = new_record(
            source=source,
            scheme="hmac-timestamp",
            provider_id=f"pid-{key[:8]}",
            received_at=received,
            raw_uri=f"gs://{BUCKET}/x",
            body_sha256="0" * 64,
            ttl_days=30,
        )
        data.update(status=status, **extra)
        assert self.records.create(key, data) is not None
        return data


@pytest.fixture
def env(emulators: Emulators) -> Env:
    suffix = uuid.uuid4().hex[:10]
    topic = f"ops-events-{suffix}"
    dead = f"ops-dead-{suffix}"
    ensure_topic(PROJECT, topic)
    ensure_topic(PROJECT, dead)
    ensure_bucket(PROJECT, BUCKET)
    subscriber = pubsub_v1.SubscriberClient()
    published_sub = subscriber.subscription_path(PROJECT, f"ops-seen-{suffix}")
    dead_sub = f"ops-dead-pull-{suffix}"
    subscriber.create_subscription(
        request={"name": published_sub, "topic": f"projects/{PROJECT}/topics/{topic}"}
    )
    subscriber.create_subscription(
        request={
            "name": subscriber.subscription_path(PROJECT, dead_sub),
            "topic": f"projects/{PROJECT}/topics/{dead}",
            "ack_deadline_seconds": 60,
        }
    )
    collection = f"events-{suffix}"
    return Env(
        records=EventRecords(PROJECT, "(default)", collection, 10),
        raw=RawStore(PROJECT, BUCKET, 10),
        publisher=EventPublisher(PROJECT, topic, 10),
        subscriber=subscriber,
        published_sub=published_sub,
        dead_topic=f"projects/{PROJECT}/topics/{dead}",
        dead_sub=dead_sub,
        collection=collection,
    )


def key(n: int | str) -> str:
    return hashlib.sha256(f"ops-test:{n}:{uuid.uuid4()}".encode()).hexdigest()


# -- selection ------------------------------------------------------------------------


def test_select_by_status_window_and_source_oldest_first(env):
    k = {name: key(name) for name in ("held_old", "held_new", "failed", "other_src", "ancient")}
    env.record(k["held_old"], "held", age_s=3000)
    env.record(k["held_new"], "held", age_s=60)
    env.record(k["failed"], "failed", age_s=100)
    env.record(k["other_src"], "held", source="other", age_s=200)
    env.record(k["ancient"], "held", age_s=10 * 86400)
    now = datetime.fromtimestamp(NOW, UTC)

    def keys(selection: Selection) -> list[str]:
        return [s.key for s in select(env.records, selection)]

    recent = Selection(statuses=("held",), since=now - timedelta(hours=2), sources=("src",))
    assert keys(recent) == [k["held_old"], k["held_new"]]
    assert keys(Selection(statuses=("held", "failed"), since=now - timedelta(hours=2))) == [
        k["held_old"],
        k["other_src"],
        k["held_new"],
        k["failed"],
    ], "per status, oldest first"
    assert keys(Selection(since=now - timedelta(seconds=150))) == [k["failed"], k["held_new"]]
    assert keys(Selection(until=now - timedelta(days=1))) == [k["ancient"]]
    assert len(keys(Selection(statuses=("held",), limit=2))) == 2


# -- replay ---------------------------------------------------------------------------


def test_replay_by_key_sends_what_needs_it_and_leaves_the_rest(env):
    k = {s: key(s) for s in ("held", "failed", "dead", "delivered", "published", "received")}
    for status, event in k.items():
        env.record(event, status)
    claimed = key("claimed")
    env.record(claimed, "received", publish_claimed_at=datetime.now(UTC))
    missing = key("missing")

    report = env.replayer().replay_keys([*k.values(), claimed, missing, k["held"]])
    actions = {i.key: i.action for i in report.items}
    assert len(report.items) == 8, "a key given twice is handled once"
    assert actions[k["held"]] is Action.REPLAYED
    assert actions[k["failed"]] is Action.REPLAYED
    assert actions[k["dead"]] is Action.REPLAYED
    assert actions[k["received"]] is Action.REPLAYED, "a stuck received record, claimed"
    assert actions[k["delivered"]] is Action.DELIVERED
    assert actions[k["published"]] is Action.IN_FLIGHT
    assert actions[claimed] is Action.IN_FLIGHT, "someone holds its claim"
    assert actions[missing] is Action.MISSING
    assert not report.ok, "a missing record is not ok"
    assert sorted(env.published()) == sorted([k["held"], k["failed"], k["dead"], k["received"]])
    for status in ("held", "failed", "dead"):
        data = env.records.get(k[status]).data
        assert data["status"] == "published"
        assert data["replayed_from"] == status

    again = env.replayer().replay_keys([k["held"], k["delivered"]])
    assert again.counts == {Action.IN_FLIGHT: 1, Action.DELIVERED: 1}
    assert env.published(settle_s=1) == [], "replaying twice publishes nothing new"


def test_a_dry_run_publishes_and_changes_nothing(env):
    held = key("held")
    env.record(held, "held")
    report = env.replayer(dry_run=True).replay_keys([held])
    assert report.counts == {Action.WOULD_REPLAY: 1}
    assert report.dry_run
    assert env.records.get(held).data["status"] == "held"
    assert env.published(settle_s=1) == []


def test_replay_of_a_selection_respects_the_rate(env):
    keys = [key(i) for i in range(5)]
    for event in keys:
        env.record(event, "failed")
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    limiter = RateLimiter(10, clock=lambda: clock[0], sleep=sleep)
    report = env.replayer(limiter=limiter).replay_selection(Selection(statuses=("failed",)))
    assert report.counts == {Action.REPLAYED: 5}
    assert slept == pytest.approx([0.1] * 4)
    assert sorted(env.published()) == sorted(keys)


# -- rebuild from GCS -----------------------------------------------------------------


def _store(env: Env, source: str, pid: str, *, metadata: dict[str, str] | None) -> tuple[str, str]:
    event = event_key(source, pid)
    name = raw_object_name(source, event, datetime.fromtimestamp(NOW, UTC))
    body = json.dumps({"id": pid, "status": "completed"}).encode()
    assert env.raw.put(name, body, metadata)
    return event, name


def test_replay_from_gcs_rebuilds_missing_records_from_the_objects(env):
    source = f"ops-{uuid.uuid4().hex[:8]}"
    received = "2026-01-02T03:04:05.678000+00:00"
    with_meta, name = _store(
        env,
        source,
        "evt_meta",
        metadata={
            "provider_event_id": "evt_meta",
            "scheme": "github",
            "event_type": "push",
            "received_at": received,
        },
    )
    no_meta, _ = _store(env, source, "evt_plain", metadata=None)
    wrong, _ = _store(env, source, "evt_wrong", metadata={"provider_event_id": "evt_other"})
    delivered, _ = _store(env, source, "evt_done", metadata={"provider_event_id": "evt_done"})
    env.record(delivered, "delivered", source=source)
    prefix = f"raw/{source}/"

    dry = env.replayer(dry_run=True, schemes={source: "hmac-timestamp"}).replay_gcs([prefix])
    assert dry.counts == {Action.WOULD_REBUILD: 2, Action.ERROR: 1, Action.DELIVERED: 1}
    assert env.records.get(with_meta) is None, "a dry run creates nothing"

    replayer = env.replayer(schemes={source: "hmac-timestamp"})
    report = replayer.replay_gcs([prefix])
    actions = {i.key: i.action for i in report.items}
    assert actions == {
        with_meta: Action.REBUILT,
        no_meta: Action.REBUILT,
        wrong: Action.ERROR,
        delivered: Action.DELIVERED,
    }
    assert "another key" in next(i.detail for i in report.items if i.key == wrong)
    assert sorted(env.published()) == sorted([with_meta, no_meta])

    rebuilt = env.records.get(with_meta).data
    assert rebuilt["status"] == "published"
    assert rebuilt["scheme"] == "github"
    assert rebuilt["event_type"] == "push"
    assert rebuilt["provider_event_id"] == "evt_meta"
    assert rebuilt["raw_uri"] == env.raw.uri(name)
    assert rebuilt["rebuilt_from"] == env.raw.uri(name)
    assert rebuilt["received_at"] == datetime.fromisoformat(received), "the original time"
    assert rebuilt["expire_at"] > datetime.now(UTC) + timedelta(days=29), "a full lifetime"

    plain = env.records.get(no_meta).data
    assert plain["scheme"] == "hmac-timestamp", "the source's scheme, from the stack"
    assert plain["provider_event_id"] == "evt_plain", "the payload's id makes the key"
    stored = env.raw.get_with_metadata(plain["raw_uri"].split(f"gs://{BUCKET}/", 1)[1])
    assert plain["received_at"] == stored.created, "no received_at in metadata: creation time"

    again = replayer.replay_gcs([prefix])
    assert again.counts == {Action.IN_FLIGHT: 2, Action.ERROR: 1, Action.DELIVERED: 1}


def test_replay_from_gcs_only_for_the_sources_asked(env):
    source = f"ops-{uuid.uuid4().hex[:8]}"
    _store(env, source, "evt_a", metadata={"provider_event_id": "evt_a", "scheme": "stripe"})
    _store(env, source + "x", "evt_b", metadata={"provider_event_id": "evt_b", "scheme": "stripe"})
    report = env.replayer(dry_run=True).replay_gcs([f"raw/{source}"], sources=[source])
    assert report.counts == {Action.WOULD_REBUILD: 1}


# -- dead letters ---------------------------------------------------------------------


def _dead_letter(env: Env, event: str) -> None:
    publisher = pubsub_v1.PublisherClient()
    data = json.dumps({"event_key": event}).encode()
    publisher.publish(env.dead_topic, data, event_key=event, source="src").result(timeout=10)


def test_dead_letters_are_acked_only_once_republished(env):
    dead, delivered, not_yet, missing = key("dead"), key("delivered"), key("pub"), key("miss")
    env.record(dead, "dead")
    env.record(delivered, "delivered")
    env.record(not_yet, "published")
    for event in (dead, delivered, not_yet, missing):
        _dead_letter(env, event)
    queue = PubSubDeadLetters(PROJECT, env.dead_sub, 10, pull_wait_s=2)

    dry = env.replayer(dry_run=True).replay_dead_letters(queue)
    assert dry.counts == {
        Action.WOULD_REPLAY: 1,
        Action.DELIVERED: 1,
        Action.PENDING: 1,
        Action.MISSING: 1,
    }
    assert env.records.get(dead).data["status"] == "dead"

    report = env.replayer().replay_dead_letters(queue)
    actions = {i.key: i.action for i in report.items}
    assert actions == {
        dead: Action.REPLAYED,
        delivered: Action.DELIVERED,
        not_yet: Action.PENDING,
        missing: Action.MISSING,
    }, "everything given back by the dry run came back at once"
    assert not report.ok
    assert env.published() == [dead]

    left = env.replayer(dry_run=True).replay_dead_letters(queue)
    assert sorted(i.key for i in left.items) == sorted([not_yet, missing]), "only those stay"


def test_a_dead_letter_run_can_be_limited(env):
    events = [key(i) for i in range(3)]
    for event in events:
        env.record(event, "dead")
        _dead_letter(env, event)
    queue = PubSubDeadLetters(PROJECT, env.dead_sub, 10, pull_wait_s=2)
    first = env.replayer().replay_dead_letters(queue, limit=2)
    assert first.counts == {Action.REPLAYED: 2}
    rest = env.replayer().replay_dead_letters(queue)
    assert rest.counts == {Action.REPLAYED: 1}
    assert sorted(env.published()) == sorted(events)


def test_a_missing_subscription_is_a_backend_error_in_the_report(env):
    queue = PubSubDeadLetters(PROJECT, "no-such-subscription", 5, pull_wait_s=1)
    report = env.replayer().replay_dead_letters(queue)
    assert report.aborted is not None
    assert "pubsub" in report.aborted
    assert not report.ok


# -- pause ----------------------------------------------------------------------------


def test_the_pause_switch_is_the_control_document(env):
    control = f"control-{uuid.uuid4().hex[:8]}"
    assert read_control(env.records, control).paused is False
    state = set_paused(env.records, control, paused=True, reason="upgrade", by="me", now=NOW)
    assert state.paused
    stored = env.records.get("delivery", collection=control).data
    assert stored["paused"] is True, "the document deliver reads: control/delivery"
    read = read_control(env.records, control)
    assert (read.paused, read.reason, read.changed_by) == (True, "upgrade", "me")
    set_paused(env.records, control, paused=False, reason=None, by="me", now=NOW)
    assert read_control(env.records, control).paused is False


def test_a_missing_object_is_none(env):
    assert env.raw.get_with_metadata("raw/none/2026/01/01/x.json") is None
