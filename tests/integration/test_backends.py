"""The JSON API adapters against the emulators, read back through the client libraries.

What the adapters write must be what the client libraries (the reconciler,
the CLI, replay, these tests) read, and the emulators must enforce the same
rules on it: create-only, update-time preconditions, increments.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1, storage

from hookpress.backends import BackendError
from hookpress.backends._values import ServerTime
from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import RawStore
from hookpress.backends.pubsub import EventPublisher
from hookpress.local.emulators import Emulators, ensure_bucket, ensure_topic

BUCKET = "hookpress-backends-test"


@pytest.fixture(scope="module")
def records(emulators: Emulators) -> EventRecords:
    return EventRecords(emulators.project, "(default)", "backend-tests", 5)


@pytest.fixture(scope="module")
def raw(emulators: Emulators) -> RawStore:
    ensure_bucket(emulators.project, BUCKET)
    return RawStore(emulators.project, BUCKET, 5)


def key() -> str:
    return secrets.token_hex(32)


def library_doc(emulators: Emulators, name: str) -> dict | None:
    snap = firestore.Client(project=emulators.project).collection("backend-tests").document(name)
    got = snap.get()
    return got.to_dict() if got.exists else None


def test_create_is_create_only_and_the_library_reads_the_same_values(records, emulators):
    k = key()
    when = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    record = {
        "status": "received",
        "attempts": 0,
        "received_at": when,
        "last_error": None,
        "nested": {"a": [1, "two", None], "ok": True},
        "ratio": 0.25,
    }
    created = records.create(k, record)
    assert isinstance(created, ServerTime)
    assert records.create(k, {**record, "status": "other"}) is None  # ALREADY_EXISTS
    assert library_doc(emulators, k) == record  # the first write stands, every type intact
    snap = records.get(k)
    assert snap is not None
    assert snap.data == record
    assert snap.update_time == created


def test_a_read_sent_ahead_answers_as_get_while_another_call_goes_out(records):
    """``start_get`` sends now and reads later: a second read meanwhile takes its own
    connection, and each answer belongs to its own request."""
    name, other = key(), key()
    assert records.create(name, {"n": 1}) is not None
    assert records.create(other, {"n": 2}) is not None
    finish = records.start_get(name)
    missing = records.start_get(key())
    assert records.get(other).data["n"] == 2
    assert missing() is None
    snapshot = finish()
    assert snapshot is not None
    assert snapshot.data["n"] == 1
    assert snapshot.update_time == records.get(name).update_time


def test_a_transition_holds_only_against_the_update_time_it_read(records, emulators):
    k = key()
    first = records.create(k, {"status": "received"})
    assert first is not None
    second = records.transition(k, first, {"status": "published", "claim": None})
    assert second is not None
    assert second > first
    # a late writer holding the old time loses, whatever it wanted to write
    assert records.transition(k, first, {"status": "failed"}) is None
    assert library_doc(emulators, k) == {"status": "published", "claim": None}
    # the time read back by the library is accepted too (nanosecond-exact)
    lib = firestore.Client(project=emulators.project).collection("backend-tests").document(k)
    assert records.transition(k, lib.get().update_time, {"status": "delivered"}) is not None
    assert records.transition(key(), first, {"status": "x"}) is None  # no such record


def test_merge_set_with_an_increment_creates_then_adds(records, emulators):
    k = key()
    records.set(k, {"status": "published", "attempts": records.increment(1)})
    records.set(k, {"last_error": "boom", "attempts": records.increment(1)})
    assert library_doc(emulators, k) == {"status": "published", "attempts": 2, "last_error": "boom"}
    records.set("delivery", {"paused": True}, collection="backend-tests-control")
    control = records.get("delivery", collection="backend-tests-control")
    assert control is not None
    assert control.data == {"paused": True}


def test_update_unless_never_overwrites_the_status_it_guards(records):
    k = key()
    records.create(k, {"status": "published", "attempts": 0})
    assert records.update_unless(k, {"attempts": records.increment(1)}, unless_status="delivered")
    records.set(k, {"status": "delivered"})
    assert not records.update_unless(k, {"status": "failed"}, unless_status="delivered")
    assert not records.update_unless(key(), {"status": "failed"}, unless_status="delivered")
    guarded = frozenset({"failed", "delivered"})
    assert not records.update_unless(k, {"status": "held"}, unless_status=guarded)
    snap = records.get(k)
    assert snap is not None
    assert snap.data == {"status": "delivered", "attempts": 1}


def test_update_unless_writes_at_once_on_the_snapshot_it_is_given(records, emulators, monkeypatch):
    """A caller that has just read the record passes it: the write is conditional on that
    read's update time, so it needs no read of its own unless the record moved on since."""
    k = key()
    records.create(k, {"status": "published", "attempts": 0})
    reads: list[str] = []
    get = records.get
    monkeypatch.setattr(records, "get", lambda name, *a: reads.append(name) or get(name, *a))

    known = get(k)
    assert known is not None
    assert records.update_unless(
        k, {"attempts": records.increment(1)}, unless_status="delivered", known=known
    )
    assert reads == []
    assert get(k).data == {"status": "published", "attempts": 1}

    # The same snapshot again: the record moved on, so it is read and the write applied once.
    assert records.update_unless(
        k, {"attempts": records.increment(1)}, unless_status="delivered", known=known
    )
    assert reads == [k]
    assert get(k).data == {"status": "published", "attempts": 2}

    # Delivered since the snapshot: the read finds it, nothing is written.
    records.set(k, {"status": "delivered"})
    assert not records.update_unless(
        k, {"status": "failed"}, unless_status="delivered", known=known
    )
    assert reads == [k, k]
    assert get(k).data == {"status": "delivered", "attempts": 2}

    # Gone since the snapshot (expired by TTL): nothing is created.
    gone = key()
    records.create(gone, {"status": "published"})
    snapshot = get(gone)
    records.client.collection("backend-tests").document(gone).delete()
    assert not records.update_unless(
        gone, {"status": "failed"}, unless_status="delivered", known=snapshot
    )
    assert library_doc(emulators, gone) is None


def test_update_unless_under_contention_applies_every_write_once(records):
    """Eight writers incrementing at once: a conditional write that loses reads again."""
    k = key()
    records.create(k, {"status": "published", "attempts": 0})

    def bump() -> None:
        assert records.update_unless(
            k, {"attempts": records.increment(1)}, unless_status="delivered"
        )

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = records.get(k)
    assert snap is not None
    assert snap.data["attempts"] == 4


def test_the_raw_object_is_create_only_with_its_metadata(raw, emulators):
    name = f"raw/test/{key()}.json"
    assert raw.put(name, b'{"first":1}', {"scheme": "stripe", "provider_event_id": "evt_1"})
    assert raw.put(name, b'{"second":2}') is False  # 412: the first bytes stand
    assert raw.get(name) == b'{"first":1}'
    assert raw.get(f"raw/test/{key()}.json") is None
    blob = storage.Client(project=emulators.project).bucket(BUCKET).get_blob(name)
    assert blob is not None
    assert blob.metadata == {"scheme": "stripe", "provider_event_id": "evt_1"}
    assert blob.content_type == "application/json"
    found = raw.get_with_metadata(name)  # the library path reads the same object
    assert found is not None
    assert found.metadata["scheme"] == "stripe"


def test_an_object_name_with_odd_characters_round_trips(raw):
    name = f"raw/odd name/ü+%2F?#/{key()}.json"
    assert raw.put(name, b"{}")
    assert raw.get(name) == b"{}"


def test_a_missing_bucket_is_a_backend_error(emulators):
    with pytest.raises(BackendError) as err:
        RawStore(emulators.project, "no-such-bucket-here", 5).put("x.json", b"{}")
    assert err.value.backend == "gcs"


@pytest.fixture
def pull_one(emulators: Emulators) -> Iterator[Callable[[], Any]]:
    """A fresh subscription to ``backend-tests``; the call pulls the one message published since."""
    topic = ensure_topic(emulators.project, "backend-tests")
    subscriber = pubsub_v1.SubscriberClient()
    sub = subscriber.subscription_path(emulators.project, f"backend-tests-{key()[:8]}")
    subscriber.create_subscription(request={"name": sub, "topic": topic})

    def pull() -> Any:
        pulled = subscriber.pull(request={"subscription": sub, "max_messages": 10}, timeout=10)
        (received,) = pulled.received_messages
        return received.message

    try:
        yield pull
    finally:
        subscriber.delete_subscription(request={"subscription": sub})


def test_a_published_key_arrives_with_its_attributes(emulators, pull_one):
    k = key()
    message_id = EventPublisher(emulators.project, "backend-tests", 5).publish(k, "stripe")
    message = pull_one()
    assert message.message_id == message_id
    assert json.loads(message.data) == {"event_key": k}
    assert dict(message.attributes) == {"event_key": k, "source": "stripe"}


def test_lane_attributes_and_a_carried_payload_arrive_as_published(emulators, pull_one):
    """The ingress's message for a laned source with the warehouse's payload (issue 13)."""
    k = key()
    attributes = {"lane": "bulk", "provider": "stripe", "event_type": "invoice.paid"}
    payload = {"id": "evt_1", "name": "caf\u00e9 \u2603", "n": [1, 2.5, None]}
    publisher = EventPublisher(emulators.project, "backend-tests", 5)
    message_id = publisher.publish(k, "stripe", attributes, payload)
    message = pull_one()
    assert message.message_id == message_id
    assert json.loads(message.data) == {"event_key": k, "payload": payload}
    assert dict(message.attributes) == {**attributes, "event_key": k, "source": "stripe"}


def test_publishing_to_a_missing_topic_is_a_backend_error(emulators):
    with pytest.raises(BackendError) as err:
        EventPublisher(emulators.project, "no-such-topic", 5).publish(key(), "x")
    assert err.value.backend == "pubsub"


# -- groups of creates from concurrent requests share one commit ---------------------------


class Commits:
    """``EventRecords._send_commit`` watched: each commit's document names; the first one
    held ``hold_s`` so the groups submitted meanwhile queue behind it."""

    def __init__(self, records: EventRecords, hold_s: float = 0.3, fail_grouped: bool = False):
        self.sent: list[list[str]] = []
        self._send = records._send_commit
        self._hold = hold_s
        self._fail_grouped = fail_grouped
        records._send_commit = self  # type: ignore[method-assign]

    def __call__(self, writes: Any) -> Any:
        names = [w["update"]["name"].rsplit("/", 1)[1] for w in writes]
        self.sent.append(names)
        if len(self.sent) == 1:
            time.sleep(self._hold)
        if self._fail_grouped and len(writes) > 2:
            raise BackendError("firestore", "TimeoutError")
        return self._send(writes)


def create_groups_at_once(
    records: EventRecords, groups: list[list[str]]
) -> dict[int, list[Any] | BackendError | None]:
    """``create_all`` of each group (names in the test collection) from its own thread, the
    first alone and the rest while its commit is held."""
    out: dict[int, list[Any] | BackendError | None] = {}

    def one(i: int) -> None:
        try:
            out[i] = records.create_all([(n, {"n": i}, None) for n in groups[i]])
        except BackendError as exc:
            out[i] = exc

    first = threading.Thread(target=one, args=(0,))
    first.start()
    time.sleep(0.1)
    rest = [threading.Thread(target=one, args=(i,)) for i in range(1, len(groups))]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()
    return out


@pytest.fixture
def fresh_records(emulators: Emulators) -> EventRecords:
    return EventRecords(emulators.project, "(default)", "backend-tests", 5)


def test_concurrent_groups_share_one_commit_and_each_lands_whole(fresh_records, emulators):
    commits = Commits(fresh_records)
    groups = [[key(), key()] for _ in range(7)]
    out = create_groups_at_once(fresh_records, groups)
    assert all(isinstance(v, list) and len(v) == 2 for v in out.values()), out
    assert [len(c) for c in commits.sent] == [2, 12]  # the six queued groups: one commit
    for i, group in enumerate(groups):
        for name in group:
            assert library_doc(emulators, name) == {"n": i}
        assert fresh_records.get(group[1]).update_time == out[i][1]  # type: ignore[index,union-attr]


def test_one_groups_existing_document_refuses_that_group_alone(fresh_records, emulators):
    taken = key()
    fresh_records.create(taken, {"n": -1})
    commits = Commits(fresh_records)
    groups = [[key(), key()], [key(), key()], [key(), taken], [key(), key()]]
    out = create_groups_at_once(fresh_records, groups)
    assert out[2] is None
    assert library_doc(emulators, groups[2][0]) is None  # nothing of the refused group
    assert library_doc(emulators, taken) == {"n": -1}
    for i in (0, 1, 3):
        assert isinstance(out[i], list)
        assert [library_doc(emulators, n) for n in groups[i]] == [{"n": i}, {"n": i}]
    # the first alone, the three queued together (refused: 409), then each on its own
    assert [len(c) for c in commits.sent] == [2, 6, 2, 2, 2]


def test_groups_sharing_a_document_never_share_a_commit(fresh_records, emulators):
    """Two copies of one body at once: the marker is the same document, so one wins."""
    marker = key()
    commits = Commits(fresh_records)
    groups = [[key(), key()], [marker, key()], [marker, key()], [key(), key()]]
    out = create_groups_at_once(fresh_records, groups)
    assert sorted(out[i] is None for i in (1, 2)) == [False, True]
    loser = 1 if out[1] is None else 2
    assert library_doc(emulators, groups[loser][1]) is None
    for names in commits.sent:
        assert len(names) == len(set(names))
    assert isinstance(out[0], list)
    assert isinstance(out[3], list)


def test_a_grouped_commit_that_fails_fails_every_group_in_it(fresh_records, emulators):
    """A failure that is not one write's refusal is no group's answer: each raises (the
    ingress answers 503 and the provider retries), none is told its documents existed."""
    Commits(fresh_records, fail_grouped=True)
    groups = [[key(), key()] for _ in range(4)]
    out = create_groups_at_once(fresh_records, groups)
    assert isinstance(out[0], list)
    assert all(isinstance(out[i], BackendError) for i in (1, 2, 3)), out
    assert all(library_doc(emulators, n) is None for g in groups[1:] for n in g)
