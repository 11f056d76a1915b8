"""Reading events: ai-guy/v1/events over the table, wp/v2 filters, posts off, retention."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite

NewEvent = Callable[..., dict[str, Any]]


def events_url(site: WordPressSite) -> str:
    return f"{site.rest_base}/ai-guy/v1/events"


def option(server: WordPressServer, name: str, value: str) -> None:
    server.run_php(f"update_option({json.dumps(name)}, {json.dumps(value)});")


@pytest.fixture
def posts_off(wordpress_server: WordPressServer) -> Iterator[None]:
    option(wordpress_server, "hookpress_create_posts", "0")
    yield
    option(wordpress_server, "hookpress_create_posts", "1")


@pytest.fixture
def source() -> str:
    """A source of this test's own, so filters see only its events."""
    return f"read-{uuid.uuid4().hex[:12]}"


def test_events_route_filters_sorts_and_pages(
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    source: str,
) -> None:
    sent = [
        new_event(source=source, external_id=f"abc-{n}", status=status, occurred_at=at)
        for n, (status, at) in enumerate(
            [
                ("failed", "2026-01-03T00:00:00Z"),
                ("succeeded", "2026-01-01T00:00:00Z"),
                ("failed", "2026-01-02T00:00:00Z"),
                ("succeeded", "2026-01-04T00:00:00Z"),
            ]
        )
    ]
    for record in sent:
        assert ingest_client.post(wordpress.ingest_url, json=record).status_code == 201

    def ids(**params: Any) -> list[str]:
        response = admin_client.get(events_url(wordpress), params={"source": source, **params})
        assert response.status_code == 200, response.text
        return [item["external_id"] for item in response.json()]

    assert ids() == ["abc-3", "abc-0", "abc-2", "abc-1"]  # newest occurred_at first
    assert ids(order="asc") == ["abc-1", "abc-2", "abc-0", "abc-3"]
    assert ids(orderby="received_at") == ["abc-3", "abc-2", "abc-1", "abc-0"]  # last stored first
    assert ids(status="failed") == ["abc-0", "abc-2"]
    assert ids(external_id="abc-2") == ["abc-2"]
    assert ids(external_id="ABC-2") == []  # exact, case-sensitive
    assert ids(search="abc-") == ["abc-3", "abc-0", "abc-2", "abc-1"]
    assert ids(search="abc-1") == ["abc-1"]
    assert ids(search="%") == []  # a prefix, not a pattern

    page = admin_client.get(
        events_url(wordpress), params={"source": source, "per_page": 3, "page": 2}
    )
    assert [e["external_id"] for e in page.json()] == ["abc-1"]
    assert page.headers["X-WP-Total"] == "4"
    assert page.headers["X-WP-TotalPages"] == "2"
    assert page.headers["X-Hookpress-Total-Capped"] == "false"

    item = admin_client.get(events_url(wordpress), params={"source": source, "per_page": 1}).json()[
        0
    ]
    assert set(item) >= {
        "id",
        "source",
        "external_id",
        "status",
        "summary",
        "metadata",
        "occurred_at",
        "received_at",
        "post_id",
    }
    assert item["metadata"] == sent[3]["metadata"]
    assert item["occurred_at"] == "2026-01-04T00:00:00Z"
    single = admin_client.get(f"{events_url(wordpress)}/{item['id']}")
    assert single.status_code == 200
    assert single.json()["external_id"] == "abc-3"
    assert admin_client.get(f"{events_url(wordpress)}/999999999").status_code == 404


def test_only_users_who_can_read_events_read_the_route(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
) -> None:
    assert httpx.get(events_url(wordpress), timeout=60).status_code == 401
    assert ingest_client.get(events_url(wordpress)).status_code == 403
    login = f"reader-{uuid.uuid4().hex[:8]}"
    password = wordpress_server.create_user(login, "editor")
    with httpx.Client(auth=(login, password), timeout=60) as editor:
        assert editor.get(events_url(wordpress)).status_code == 403
    # Read-only: no method but GET.
    with httpx.Client(
        auth=(wordpress.admin_user, wordpress.admin_app_password), timeout=60
    ) as admin:
        assert admin.post(events_url(wordpress), json={}).status_code == 404
        assert admin.delete(f"{events_url(wordpress)}/1").status_code == 404


def test_the_events_schema_says_every_field_is_read_only(
    admin_client: httpx.Client, wordpress: WordPressSite
) -> None:
    """OPTIONS on the route: what an event holds, its types, and nothing writable."""
    schema = admin_client.options(events_url(wordpress)).json()["schema"]
    assert schema["title"] == "hookpress-event"
    types = {name: field["type"] for name, field in schema["properties"].items()}
    assert types == {
        "id": "integer",
        "source": "string",
        "external_id": "string",
        "status": "string",
        "summary": "string",
        "metadata": "object",
        "occurred_at": "string",
        "received_at": "string",
        "post_id": ["integer", "null"],
    }
    for name, field in schema["properties"].items():
        assert field["readonly"] is True, name
        assert field["description"], name


def test_wp_v2_filters_read_the_table(
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    source: str,
) -> None:
    mine = new_event(source=source)
    twin = new_event(source="other-source", external_id=mine["external_id"])
    created = [ingest_client.post(wordpress.ingest_url, json=r).json() for r in (mine, twin)]
    posts = f"{wordpress.rest_base}/wp/v2/ai-events"

    both = admin_client.get(posts, params={"external_id": mine["external_id"]}).json()
    assert sorted(p["id"] for p in both) == sorted(c["id"] for c in created)
    one = admin_client.get(posts, params={"external_id": mine["external_id"], "source": source})
    assert [p["id"] for p in one.json()] == [created[0]["id"]]
    by_source = admin_client.get(posts, params={"source": source}).json()
    assert [p["id"] for p in by_source] == [created[0]["id"]]
    assert admin_client.get(posts, params={"external_id": "no-such-id"}).json() == []


def test_with_posts_off_nothing_touches_posts_and_the_route_serves_the_event(
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    new_event: NewEvent,
    posts_off: None,
) -> None:
    def counts() -> tuple[str, str]:
        row = wordpress_server.sql(
            "SELECT (SELECT COUNT(*) FROM wp_posts) AS posts,"
            " (SELECT COUNT(*) FROM wp_postmeta) AS meta"
        )[0]
        return row["posts"], row["meta"]

    before = counts()
    record = new_event()
    created = ingest_client.post(wordpress.ingest_url, json=record)
    updated = ingest_client.post(
        wordpress.ingest_url,
        json={**record, "status": "later", "occurred_at": "2027-01-01T00:00:00Z"},
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["post_id"] is None
    assert body["id"] == body["event_id"]
    location = created.headers["Location"]
    assert location.endswith(f"/wp-json/ai-guy/v1/events/{body['id']}")
    assert updated.json()["result"] == "updated"
    assert counts() == before
    served = admin_client.get(location)
    assert served.status_code == 200, served.text
    assert served.json()["status"] == "later"
    assert served.json()["post_id"] is None


def test_retention_prunes_old_events_with_their_posts_in_chunks(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    new_event: NewEvent,
    source: str,
) -> None:
    records = [new_event(source=source) for _ in range(5)]
    ids = [ingest_client.post(wordpress.ingest_url, json=r).json()["event_id"] for r in records]
    old, recent = ids[:3], ids[3:]
    in_old = ",".join(str(i) for i in old)
    wordpress_server.sql(
        "UPDATE wp_hookpress_events SET received_at = UTC_TIMESTAMP(6) - INTERVAL 3 DAY "
        f"WHERE id IN ({in_old})"
    )
    post_ids = [
        r["post_id"]
        for r in wordpress_server.sql(
            f"SELECT post_id FROM wp_hookpress_events WHERE id IN ({in_old})"
        )
    ]

    # Off (the default): nothing is pruned.
    assert wordpress_server.run_php("echo Hookpress_Retention::prune();") == "0"
    option(wordpress_server, "hookpress_retention_days", "2")
    try:
        # A version stored after the chunk was read is kept: the delete checks the age again.
        kept = wordpress_server.run_php(
            "echo Hookpress_Event_Store::delete("
            f"array({recent[0]}), gmdate('Y-m-d H:i:s', time() - 2 * DAY_IN_SECONDS));"
        )
        assert kept == "0"
        pruned = wordpress_server.run_php("echo Hookpress_Retention::prune();")
    finally:
        option(wordpress_server, "hookpress_retention_days", "0")

    assert int(pruned) >= 3
    left = wordpress_server.sql(
        f"SELECT id FROM wp_hookpress_events WHERE source = '{source}' ORDER BY id"
    )
    assert [int(r["id"]) for r in left] == recent
    in_posts = ",".join(str(p) for p in post_ids)
    assert wordpress_server.sql(f"SELECT ID FROM wp_posts WHERE ID IN ({in_posts})") == []
    assert (
        wordpress_server.sql(f"SELECT meta_id FROM wp_postmeta WHERE post_id IN ({in_posts})") == []
    )


def test_retention_hands_a_backlog_to_its_next_run(wordpress_server: WordPressServer) -> None:
    output = wordpress_server.run_php(
        """
        global $wpdb;
        $table = Hookpress_Event_Store::table();
        $wpdb->query( "INSERT INTO {$table} (source, external_id, status, summary, metadata,
            occurred_at_us, content_hash, received_at) SELECT 'backlog', CONCAT('old-', seq),
            'x', '', '{}', 0, UNHEX(SHA2(seq, 256)), '2000-01-01 00:00:00' FROM seq_1_to_2500" );
        update_option( 'hookpress_retention_days', 1 );
        wp_unschedule_hook( Hookpress_Retention::HOOK );
        $first = Hookpress_Retention::prune( 0 );
        $continued = (bool) wp_next_scheduled( Hookpress_Retention::HOOK, array( 'continued' ) );
        do_action( Hookpress_Retention::HOOK );
        $left = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table} WHERE source = 'backlog'" );
        update_option( 'hookpress_retention_days', 0 );
        wp_unschedule_hook( Hookpress_Retention::HOOK );
        Hookpress_Installer::install();
        echo json_encode( array( $first, $continued, $left,
            (bool) wp_next_scheduled( Hookpress_Retention::HOOK ) ) );
        """
    )
    first, continued, left, hourly = json.loads(output)
    assert first == 1000  # one chunk, then out of time
    assert continued is True
    assert left == 0
    assert hourly is True
