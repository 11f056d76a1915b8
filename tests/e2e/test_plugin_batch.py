"""POST ai-guy/v1/ingest/batch: up to 100 records, each as the single route would store it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from hookpress.local.wordpress import WordPressServer, WordPressSite

NewEvent = Callable[..., dict[str, Any]]
SetOptions = Callable[..., None]


def batch_url(site: WordPressSite) -> str:
    return f"{site.ingest_url}/batch"


def item(record: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"record": record}
    if key is not None:
        entry["idempotency_key"] = key
    return entry


def test_batch_answers_each_record_in_order(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    find_events: Callable[[str], list[dict[str, Any]]],
) -> None:
    existing = new_event(occurred_at="2026-01-01T00:00:00Z")
    first = ingest_client.post(wordpress.ingest_url, json=existing)
    assert first.status_code == 201, first.text
    fresh = new_event()
    newer = {**existing, "status": "refunded", "occurred_at": "2026-01-02T00:00:00Z"}
    invalid = new_event(source="Not Valid")

    response = ingest_client.post(
        batch_url(wordpress), json={"records": [item(fresh), item(newer), item(invalid)]}
    )

    assert response.status_code == 207, response.text
    answers = response.json()["responses"]
    assert [a["status"] for a in answers] == [201, 200, 400]
    assert answers[0]["body"]["result"] == "created"
    assert answers[0]["headers"]["Location"].endswith(
        f"/wp/v2/ai-events/{answers[0]['body']['id']}"
    )
    assert answers[1]["body"] == {**first.json(), "result": "updated"}
    assert answers[2]["body"]["code"] == "rest_invalid_param"
    assert [e["id"] for e in find_events(fresh["external_id"])] == [answers[0]["body"]["id"]]
    assert find_events(existing["external_id"])[0]["meta"]["status"] == "refunded"


def test_batch_records_carry_their_own_idempotency_keys(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    records = [new_event() for _ in range(3)]
    keys = [f"batch-{uuid.uuid4().hex}" for _ in records]
    payload = {"records": [item(r, k) for r, k in zip(records, keys, strict=True)]}

    first = ingest_client.post(batch_url(wordpress), json=payload).json()["responses"]
    again = ingest_client.post(batch_url(wordpress), json=payload).json()["responses"]

    assert [a["status"] for a in first] == [201, 201, 201]
    assert all("Idempotent-Replayed" not in a["headers"] for a in first)
    assert [a["status"] for a in again] == [201, 201, 201]
    assert all(a["headers"]["Idempotent-Replayed"] == "true" for a in again)
    assert [a["body"] for a in again] == [a["body"] for a in first]

    # A key reused with another body fails that record only.
    mixed = ingest_client.post(
        batch_url(wordpress),
        json={"records": [item(new_event(), keys[0]), item(new_event(), f"k-{uuid.uuid4().hex}")]},
    ).json()["responses"]
    assert [a["status"] for a in mixed] == [422, 201]
    assert mixed[0]["body"]["code"] == "hookpress_idempotency_key_reused"

    # The same key on the single route replays what the batch stored.
    single = ingest_client.post(
        wordpress.ingest_url, json=records[1], headers={"Idempotency-Key": keys[1]}
    )
    assert single.headers["Idempotent-Replayed"] == "true"
    assert single.json() == first[1]["body"]


def test_batch_spends_one_token_per_record(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    plugin_options: SetOptions,
) -> None:
    plugin_options(rate_per_minute=1, burst=5)

    response = ingest_client.post(
        batch_url(wordpress), json={"records": [item(new_event()) for _ in range(8)]}
    )
    assert response.status_code == 207, response.text
    answers = response.json()["responses"]

    assert [a["status"] for a in answers] == [201] * 5 + [429] * 3
    assert all(int(a["headers"]["Retry-After"]) >= 1 for a in answers[5:])
    assert answers[5]["body"]["code"] == "hookpress_rate_limited"
    # The bucket is empty for the single route too.
    assert ingest_client.post(wordpress.ingest_url, json=new_event()).status_code == 429


def test_batch_keeps_metadata_exactly(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    wordpress_server: WordPressServer,
) -> None:
    metadata = {"empty": {}, "list": [], "nested": {"a": [{}]}, "path": "a\\b/c", "text": "é ✓"}
    record = new_event(metadata=metadata)

    answer = ingest_client.post(batch_url(wordpress), json={"records": [item(record)]}).json()
    event_id = answer["responses"][0]["body"]["event_id"]

    stored = wordpress_server.sql(
        f"SELECT metadata FROM wp_hookpress_events WHERE id = {int(event_id)}"
    )
    assert json.loads(stored[0]["metadata"]) == metadata
    assert '"empty":{}' in stored[0]["metadata"]


def test_batch_of_one_hundred_is_the_limit(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    full = ingest_client.post(
        batch_url(wordpress), json={"records": [item(new_event()) for _ in range(100)]}
    )
    assert full.status_code == 207, full.text
    assert [a["status"] for a in full.json()["responses"]] == [201] * 100

    over = ingest_client.post(
        batch_url(wordpress), json={"records": [item(new_event()) for _ in range(101)]}
    )
    assert over.status_code == 400, over.text
    empty = ingest_client.post(batch_url(wordpress), json={"records": []})
    assert empty.status_code == 400, empty.text


def test_batch_is_refused_whole_to_whoever_may_not_ingest(
    wordpress: WordPressSite,
    admin_client: httpx.Client,
    ingest_client: httpx.Client,
    outside_ingest_client: httpx.Client,
    new_event: NewEvent,
    wordpress_server: WordPressServer,
) -> None:
    record = new_event()
    payload = {"records": [item(record)]}
    url = batch_url(wordpress)

    assert httpx.post(url, json=payload, timeout=60).status_code == 401
    assert admin_client.post(url, json=payload).status_code == 403
    outside = outside_ingest_client.post(url, json=payload)
    assert outside.status_code == 403, outside.text
    assert outside.json()["code"] == "hookpress_address_forbidden"
    assert ingest_client.post(url, data={"records": "x"}).status_code == 415
    unknown = ingest_client.post(url, json={"records": [{**item(record), "surprise": 1}]})
    assert unknown.status_code == 400, unknown.text
    assert (
        ingest_client.post(
            url,
            content=b'{"records": [' + b" " * (4 * 1024 * 1024) + b"]}",
            headers={"Content-Type": "application/json"},
        ).status_code
        == 413
    )
    # Nothing of the refused requests was stored.
    stored = wordpress_server.sql(
        "SELECT COUNT(*) AS n FROM wp_hookpress_events WHERE external_id = "
        f"'{record['external_id']}'"
    )
    assert int(stored[0]["n"]) == 0
