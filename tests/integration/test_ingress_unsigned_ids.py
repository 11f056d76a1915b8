"""Unsigned delivery ids cannot mint events (GitHub, Shopify): the signed body decides.

An attacker who captured one genuine request can send its body and signature
again under any ``X-GitHub-Delivery``/``X-Shopify-Webhook-Id``, or none: each
is the first event again (``200 duplicate``). The first copy creates the
body's marker and its record in one atomic commit; a later copy finds it and
is stored under the first id (the object it uploaded under its own id stays,
and replay from GCS calls it a copy). Every failure window is walked here:
whatever failed, the provider's retry - under the same id or another -
completes the one event, publishes it once, and loses nothing, and replay
from GCS makes no second event of a copy.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hookpress.backends import BackendError
from hookpress.events import body_marker_key, event_key
from hookpress.ops.replay import Action, Replayer
from tests.integration.conftest import Backends, http_client, signed, unique_body
from tests.integration.test_ingress_faults import Flaky, assert_unavailable

UNSIGNED = ["github", "shopify"]
TYPE_HEADER = {"github": "X-GitHub-Event", "shopify": "X-Shopify-Topic"}
ID_HEADER = {"github": "X-GitHub-Delivery", "shopify": "X-Shopify-Webhook-Id"}


def fresh_id(tag: str = "d") -> str:
    return f"{tag}-{time.monotonic_ns()}"


def send(app: Any, source: str, body: bytes, delivery: str | None, **headers: str) -> Any:
    sent = signed(source, body, delivery_id=delivery or "x")
    if delivery is None:
        del sent[ID_HEADER[source]]
    sent.update(headers)
    return http_client(app).post(f"/{source}", content=body, headers=sent)


def messages_for(backends: Backends) -> list[str]:
    return [json.loads(m.data)["event_key"] for m in backends.messages()]


def keys_of(backends: Backends, source: str, body: bytes) -> set[str]:
    """Every record holding this body (there must be exactly one)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    digest = hashlib.sha256(body).hexdigest()
    query = backends.db.collection("events").where(filter=FieldFilter("body_sha256", "==", digest))
    return {d.id for d in query.stream() if (d.to_dict() or {}).get("source") == source}


def marker(backends: Backends, source: str, body: bytes) -> dict[str, Any] | None:
    snap = backends.db.collection("events-bodies").document(body_marker_key(source, body)).get()
    return snap.to_dict() if snap.exists else None


@pytest.mark.parametrize("source", UNSIGNED)
def test_the_same_signed_body_under_another_id_or_none_is_a_duplicate(
    app, client, backends: Backends, source: str
):
    body = unique_body(source)
    first_id = fresh_id()
    first = send(app, source, body, first_id, **{TYPE_HEADER[source]: "first.type"})
    assert first.status_code == 202
    key = first.json()["event_id"]
    assert key == event_key(source, first_id)

    replays = [
        send(app, source, body, fresh_id("replayed")),
        send(app, source, body, None),  # no id header: the payload id would have been used
        send(app, source, body, fresh_id(), **{TYPE_HEADER[source]: "other.type"}),
        send(app, source, body, first_id),  # the provider's own retry
    ]
    assert [r.status_code for r in replays] == [200] * 4
    assert all(r.json() == {"status": "duplicate", "event_id": key} for r in replays)

    assert keys_of(backends, source, body) == {key}
    record = backends.wait_status(key, "published")
    assert record["provider_event_id"] == first_id
    assert record["event_type"] == "first.type"  # an unsigned type header decides nothing
    assert messages_for(backends) == [key]
    mark = marker(backends, source, body)
    assert mark is not None
    assert mark["provider_event_id"] == first_id
    assert mark["expire_at"] - mark["created_at"] == record["expire_at"] - record["received_at"]


def test_a_signed_id_is_trusted_as_the_providers_word(client, backends: Backends):
    """Standard Webhooks signs webhook-id: a new id is a new message, and no marker is kept."""
    body = unique_body("sw")
    first = client.post(
        "/standard-webhooks",
        content=body,
        headers=signed("standard-webhooks", body, delivery_id="m1x"),
    )
    other = fresh_id("msg")
    second = client.post(
        "/standard-webhooks",
        content=body,
        headers=signed("standard-webhooks", body, delivery_id=other),
    )
    assert (first.status_code, second.status_code) == (202, 202)
    assert marker(backends, "standard-webhooks", body) is None


@pytest.mark.parametrize("source", UNSIGNED)
def test_copies_under_many_ids_at_once_are_one_event(app, ingestor, backends: Backends, source):
    from hookpress import ingress

    ingress.install(ingestor)
    body = unique_body(source)
    ids = [fresh_id(f"c{i}") for i in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda d: send(app, source, body, d), ids))
    finally:
        ingress.install(None)
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [202]
    (key,) = {a.json()["event_id"] for a in answers}
    assert keys_of(backends, source, body) == {key}
    assert key == event_key(source, marker(backends, source, body)["provider_event_id"])
    assert messages_for(backends) == [key]
    # Each copy's upload under its own id stays (the ingress never deletes an object):
    # bytes no record names, which replay from GCS finds to be copies of the one event.
    actions = replayed(ingestor, backends, source, [event_key(source, i) for i in ids])
    assert sorted(actions.values()) == sorted([Action.COPY] * 7 + [Action.IN_FLIGHT])
    assert actions[key] is Action.IN_FLIGHT  # published: nothing to do
    assert messages_for(backends) == []


def replayed(ingestor: Any, backends: Backends, source: str, keys: list[str]) -> dict[str, Any]:
    """Replay from GCS the objects of these event keys only (each object's full name is its
    prefix: the session's bucket holds every other test's objects too): key -> action."""
    names = [n for n in backends.object_names() if any(k in n for k in keys)]
    assert names
    assert all(n.startswith(f"raw/{source}/") for n in names)
    report = Replayer(ingestor.records, ingestor.publication, raw=ingestor.raw).replay_gcs(names)
    return {i.key: i.action for i in report.items}


# -- failure windows: nothing accepted is lost, nothing is published twice ------------------


def leave_marker(backends: Backends, source: str, body: bytes, provider_id: str) -> None:
    """A marker without its record: what an attempt before the marker and the record were
    one commit left when its record's create failed, or a marker outliving its record while
    Firestore's TTL deletes the two at different times."""
    backends.db.collection("events-bodies").document(body_marker_key(source, body)).create(
        {"source": source, "provider_event_id": provider_id}
    )


@pytest.mark.parametrize("retry_id", ["same", "another", "none"])
def test_a_marker_without_its_record_is_completed_by_any_retry(
    app, use, backends: Backends, retry_id: str
):
    use()
    source = "github"
    body = unique_body(source)
    first_id = fresh_id()
    leave_marker(backends, source, body, first_id)
    assert keys_of(backends, source, body) == set()

    retry = {"same": first_id, "another": fresh_id("retry"), "none": None}[retry_id]
    resp = send(app, source, body, retry)
    # nothing was accepted before: this is the event's first 202, under the first id
    assert resp.status_code == 202
    key = event_key(source, first_id)
    assert resp.json()["event_id"] == key
    assert keys_of(backends, source, body) == {key}
    assert backends.wait_status(key, "published")["provider_event_id"] == first_id
    assert messages_for(backends) == [key]


def test_the_first_copy_writes_marker_and_record_together(app, ingestor, use, backends):
    """One commit, not two round trips: and when it fails, neither is written."""
    source = "shopify"
    body = unique_body(source)
    first = fresh_id()
    records = Flaky(ingestor.records, "create_all", "firestore")
    use(records=records)
    assert_unavailable(send(app, source, body, first))
    assert marker(backends, source, body) is None
    assert keys_of(backends, source, body) == set()
    use()
    resp = send(app, source, body, first)
    assert resp.status_code == 202
    key = event_key(source, first)
    assert marker(backends, source, body)["provider_event_id"] == first
    assert keys_of(backends, source, body) == {key}
    assert messages_for(backends) == [key]


def accepted(app: Any, backends: Backends, source: str) -> tuple[bytes, str, str]:
    """A new body accepted and published under a fresh id (its message consumed): the
    body, the id and the event key."""
    body = unique_body(source)
    first = fresh_id()
    assert send(app, source, body, first).status_code == 202
    key = event_key(source, first)
    backends.wait_status(key, "published")
    messages_for(backends)
    return body, first, key


def test_a_record_without_a_marker_is_a_duplicate_and_gets_its_marker(app, use, backends):
    """The commit is refused by the record alone (one stored before markers existed): the
    copy completes the marker under its own id and is the record's duplicate."""
    use()
    source = "github"
    body, first, key = accepted(app, backends, source)
    backends.db.collection("events-bodies").document(body_marker_key(source, body)).delete()

    again = send(app, source, body, first)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "event_id": key}
    assert marker(backends, source, body)["provider_event_id"] == first
    assert backends.messages(settle_s=0.5) == []


def test_a_failed_commit_leaves_only_bytes_and_replay_makes_no_second_event(
    app, ingestor, use, backends: Backends
):
    """The commit fails (503) after the upload went out beside it: the object stays, named
    for that copy's id, with no marker and no record. A retry under another id is the
    event; replay from GCS then finds the first object a copy, not an event to rebuild."""
    source = "shopify"
    body = unique_body(source)
    first = fresh_id()
    use(records=Flaky(ingestor.records, "create_all", "firestore"))
    assert_unavailable(send(app, source, body, first))
    use()
    names = {n for n in backends.object_names() if event_key(source, first) in n}
    assert len(names) == 1, "the upload overlapped the commit"

    second = fresh_id("retry")
    resp = send(app, source, body, second)
    assert resp.status_code == 202
    key = event_key(source, second)
    assert resp.json()["event_id"] == key
    assert messages_for(backends) == [key]

    actions = replayed(ingestor, backends, source, [event_key(source, first), key])
    assert actions == {event_key(source, first): Action.COPY, key: Action.IN_FLIGHT}
    assert keys_of(backends, source, body) == {key}
    assert messages_for(backends) == []


def test_replay_rebuilds_a_lost_record_with_its_marker(app, ingestor, use, backends: Backends):
    """Records and markers lost together (a database restored without them): replay from
    GCS rebuilds the event under its id and its marker with it, so a copy stays a copy."""
    use()
    source = "github"
    body, first, key = accepted(app, backends, source)
    backends.db.collection("events").document(key).delete()
    backends.db.collection("events-bodies").document(body_marker_key(source, body)).delete()

    assert replayed(ingestor, backends, source, [key]) == {key: Action.REBUILT}
    assert marker(backends, source, body)["provider_event_id"] == first
    again = send(app, source, body, fresh_id("copy"))
    assert again.json() == {"status": "duplicate", "event_id": key}


class UploadRefused:
    """Wraps the raw store: the first upload is refused (say GCS answered 503) once the
    record was created beside it, so the record is stored and the bytes are not."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.refusals = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def start_put(self, *args: Any, **kwargs: Any) -> Any:
        if self.refusals == 0:
            return self._inner.start_put(*args, **kwargs)
        self.refusals -= 1

        def refused() -> Any:
            raise BackendError("gcs", "injected: upload refused")

        return refused


@pytest.mark.parametrize("failing", ["gcs", "pubsub"])
def test_stored_but_not_published_then_a_retry_under_another_id_publishes_once(
    app, ingestor, use, backends: Backends, failing: str
):
    source = "github"
    body = unique_body(source)
    first_id = fresh_id()
    if failing == "gcs":
        use(raw=UploadRefused(ingestor.raw))
    else:
        use(publisher=Flaky(ingestor.publisher, "publish", "pubsub"))
    assert_unavailable(send(app, source, body, first_id))
    key = event_key(source, first_id)
    assert keys_of(backends, source, body) == {key}
    assert backends.record(key)["status"] == "received"

    resp = send(app, source, body, fresh_id("retry"))
    assert resp.status_code == 200
    assert resp.json() == {"status": "duplicate", "event_id": key}
    record = backends.wait_status(key, "published")
    assert backends.object(record["raw_uri"].split("/", 3)[3]) == body
    assert messages_for(backends) == [key]
    again = send(app, source, body, fresh_id("again"))
    assert again.status_code == 200
    assert backends.messages(settle_s=0.5) == []
