"""The ingest route against a real WordPress: storage, upsert, idempotency, schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from hookpress.local.wordpress import WordPressServer, WordPressSite
from tests.e2e.plugin_site import concurrently

Event = dict[str, Any]
NewEvent = Callable[..., Event]
FindEvents = Callable[[str], list[Event]]


def test_valid_ingest_creates_one_event_with_its_fields(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event(
        source="openai",
        status="completed",
        summary="Batch finished: 3 of 3",
        metadata={"model": "gpt", "nested": {"empty": {}, "list": [1, 2]}, "path": "a\\b"},
        occurred_at="2026-03-04T05:06:07.25+02:00",
    )

    response = ingest_client.post(wordpress.ingest_url, json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["result"] == "created"
    assert created["external_id"] == body["external_id"]
    assert isinstance(created["id"], int)
    assert created["id"] > 0

    events = find_events(body["external_id"])
    assert [event["id"] for event in events] == [created["id"]]
    event = events[0]
    assert event["type"] == "ai_event"
    meta = event["meta"]
    assert meta["external_id"] == body["external_id"]
    assert meta["source"] == "openai"
    assert meta["status"] == "completed"
    assert meta["summary"] == "Batch finished: 3 of 3"
    # Normalized to UTC, fraction kept.
    assert meta["occurred_at"] == "2026-03-04T03:06:07.25Z"
    assert meta["received_at"].endswith("Z")
    # Metadata round-trips exactly, empty objects and backslashes included.
    assert json.loads(meta["metadata"]) == body["metadata"]
    assert '"empty":{}' in meta["metadata"]


def test_twenty_concurrent_requests_for_one_external_id_make_one_post(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event()

    responses = concurrently(20, lambda _: ingest_client.post(wordpress.ingest_url, json=body))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses]
    results = sorted(response.json()["result"] for response in responses)
    assert results == ["created"] + ["unchanged"] * 19
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(find_events(body["external_id"])) == 1


def test_idempotency_key_replays_the_first_response(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event()
    key = f"key-{body['external_id']}"

    first = ingest_client.post(wordpress.ingest_url, json=body, headers={"Idempotency-Key": key})
    second = ingest_client.post(wordpress.ingest_url, json=body, headers={"Idempotency-Key": key})

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert second.status_code == 201, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert len(find_events(body["external_id"])) == 1

    # Without the key the same body is an ordinary, unchanged upsert.
    third = ingest_client.post(wordpress.ingest_url, json=body)
    assert third.status_code == 200, third.text
    assert third.json()["result"] == "unchanged"


def test_idempotency_key_reused_with_another_body_is_refused(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    body = new_event()
    key = f"key-{body['external_id']}"
    first = ingest_client.post(wordpress.ingest_url, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text

    other = ingest_client.post(
        wordpress.ingest_url, json=new_event(), headers={"Idempotency-Key": key}
    )

    assert other.status_code == 422, other.text
    assert other.json()["code"] == "hookpress_idempotency_key_reused"


def test_concurrent_requests_with_one_idempotency_key_store_once(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event()
    headers = {"Idempotency-Key": f"key-{body['external_id']}"}

    responses = concurrently(
        10, lambda _: ingest_client.post(wordpress.ingest_url, json=body, headers=headers)
    )

    # One request runs; the others wait on its claim and replay its answer.
    fresh = [
        r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(fresh) == 1, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response is not fresh[0]:
            assert response.status_code == 201, response.text
            assert response.headers["Idempotent-Replayed"] == "true"
            assert response.json() == fresh[0].json()
    assert len(find_events(body["external_id"])) == 1


def test_script_in_summary_is_stored_sanitized(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event(
        summary='Done <script>alert("x")</script><img src=x onerror=alert(1)> 100% accurate'
    )

    response = ingest_client.post(wordpress.ingest_url, json=body)

    assert response.status_code == 201, response.text
    post_id = response.json()["id"]
    meta = find_events(body["external_id"])[0]["meta"]
    assert "<script" not in meta["summary"].lower()
    assert "<img" not in meta["summary"].lower()
    assert "alert" not in meta["summary"]
    assert meta["summary"] == "Done  100% accurate"
    # The post itself, as stored in the database.
    stored = wordpress_server.run_php(
        f"$p = get_post({post_id}); echo $p->post_content, '|', $p->post_title;"
    )
    assert "<script" not in stored.lower()
    assert "onerror" not in stored.lower()


def test_older_occurred_at_does_not_overwrite_newer(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    newer = new_event(status="completed", occurred_at="2026-05-01T12:00:00Z")
    older = {**newer, "status": "in_progress", "occurred_at": "2026-05-01T13:59:59+02:00"}
    newest = {**newer, "status": "archived", "occurred_at": "2026-05-01T12:00:00.000001Z"}

    created = ingest_client.post(wordpress.ingest_url, json=newer)
    stale = ingest_client.post(wordpress.ingest_url, json=older)

    assert created.status_code == 201, created.text
    assert stale.status_code == 200, stale.text
    assert stale.json()["result"] == "stale"
    assert stale.json()["id"] == created.json()["id"]
    meta = find_events(newer["external_id"])[0]["meta"]
    assert meta["status"] == "completed"
    assert meta["occurred_at"] == "2026-05-01T12:00:00Z"

    updated = ingest_client.post(wordpress.ingest_url, json=newest)
    assert updated.status_code == 200, updated.text
    assert updated.json()["result"] == "updated"
    events = find_events(newer["external_id"])
    assert len(events) == 1
    assert events[0]["meta"]["status"] == "archived"


def test_schema_rejects_bad_bodies(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    missing_id = new_event()
    del missing_id["external_id"]
    cases: dict[str, Any] = {
        "unknown property": new_event(surprise=True),
        "over-long summary": new_event(summary="x" * 2001),
        "missing external_id": missing_id,
        "source with upper case": new_event(source="Stripe"),
        "source with a trailing newline": new_event(source="stripe\n"),
        "external_id too long": new_event(external_id="e" * 257),
        "status empty": new_event(status=""),
        "status not a string": new_event(status=3),
        "metadata a list": new_event(metadata=[1, 2]),
        "metadata a string": new_event(metadata="{}"),
        "occurred_at without offset": new_event(occurred_at="2026-01-02T03:04:05"),
        "occurred_at not a date": new_event(occurred_at="2026-02-30T00:00:00Z"),
        "not an object": [new_event()],
    }
    for name, body in cases.items():
        response = ingest_client.post(wordpress.ingest_url, json=body)
        assert response.status_code == 400, f"{name}: {response.status_code} {response.text}"

    # Exactly at the limits is fine.
    edge = new_event(summary="y" * 2000, external_id="e" * 256, source="a" * 64)
    response = ingest_client.post(wordpress.ingest_url, json=edge)
    assert response.status_code == 201, response.text


def test_query_string_cannot_fill_in_a_body_field(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    body = new_event()
    del body["source"]

    response = ingest_client.post(wordpress.ingest_url, json=body, params={"source": "e2e"})

    assert response.status_code == 400, response.text


def test_metadata_over_64_kib_is_refused(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    body = new_event(metadata={"blob": "z" * (64 * 1024)})

    response = ingest_client.post(wordpress.ingest_url, json=body)

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "hookpress_metadata_too_large"


def test_body_must_be_json(ingest_client: httpx.Client, wordpress: WordPressSite) -> None:
    response = ingest_client.post(wordpress.ingest_url, data={"source": "e2e"})

    assert response.status_code == 415, response.text


def test_event_deleted_in_wp_admin_is_created_again_on_redelivery(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    new_event: NewEvent,
    find_events: FindEvents,
) -> None:
    body = new_event()
    first = ingest_client.post(wordpress.ingest_url, json=body)
    assert first.status_code == 201, first.text

    # What "Delete Permanently" in the list does.
    wordpress_server.run_php(f"wp_delete_post({first.json()['id']}, true);")
    again = ingest_client.post(wordpress.ingest_url, json=body)

    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert [event["id"] for event in find_events(body["external_id"])] == [again.json()["id"]]


def test_trashed_event_stays_in_the_trash_when_updated(
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    new_event: NewEvent,
) -> None:
    body = new_event(occurred_at="2026-01-01T00:00:00Z")
    first = ingest_client.post(wordpress.ingest_url, json=body)
    assert first.status_code == 201, first.text
    post_id = first.json()["id"]
    wordpress_server.run_php(f"wp_trash_post({post_id});")

    newer = ingest_client.post(
        wordpress.ingest_url,
        json={**body, "status": "later", "occurred_at": "2026-01-02T00:00:00Z"},
    )

    assert newer.status_code == 200, newer.text
    assert newer.json() == {**first.json(), "result": "updated"}
    trashed = admin_client.get(
        f"{wordpress.rest_base}/wp/v2/ai-events",
        params={"external_id": body["external_id"], "status": "trash"},
    )
    assert trashed.status_code == 200, trashed.text
    assert [(event["id"], event["meta"]["status"]) for event in trashed.json()] == [
        (post_id, "later")
    ]
