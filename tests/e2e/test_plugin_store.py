"""The events table as the store of record, against a real WordPress and MariaDB.

One atomic upsert per version, ordered by occurred_at with a deterministic
tie-break; created / updated / unchanged / stale told apart; correct under
concurrent writers, behind a read/write-splitting driver, and across PHP
being killed at every step of a request. Runs on a site of its own, with the
test-only hooks of ``tests/e2e/wp/`` installed.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite
from tests.e2e.plugin_site import (
    EVENTS,
    IDEMPOTENCY,
    LOCKING,
    META_PREFIX,
    STEPS,
    WP_FILES,
    captured_queries,
    concurrently,
    count,
    install_test_hooks,
    posts_titled,
    projection_problems,
    quote,
    rows_of,
    seed_site,
    unindexed,
)

Body = dict[str, Any]

NEWEST_US = int(datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC).timestamp()) * 1_000_000


@pytest.fixture(scope="module")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressServer]:
    with WordPressServer(tmp_path_factory.mktemp("store-site"), workers=8) as server:
        install_test_hooks(server)
        yield server


@pytest.fixture(scope="module")
def site(store_server: WordPressServer) -> WordPressSite:
    return store_server.site


@pytest.fixture(scope="module")
def client(site: WordPressSite) -> Iterator[httpx.Client]:
    with httpx.Client(
        auth=(site.ingest_user, site.app_password),
        timeout=120,
        limits=httpx.Limits(max_connections=64),
    ) as client:
        yield client


@pytest.fixture(scope="module")
def admin(site: WordPressSite) -> Iterator[httpx.Client]:
    with httpx.Client(auth=(site.admin_user, site.admin_app_password), timeout=120) as client:
        yield client


@pytest.fixture
def posts_off(store_server: WordPressServer) -> Iterator[None]:
    store_server.sql(
        "UPDATE wp_options SET option_value = '0' WHERE option_name = 'hookpress_create_posts'"
    )
    yield
    store_server.sql(
        "UPDATE wp_options SET option_value = '1' WHERE option_name = 'hookpress_create_posts'"
    )


def body(external_id: str, **fields: Any) -> Body:
    record: Body = {
        "source": "store",
        "external_id": external_id,
        "status": "succeeded",
        "summary": "A stored event.",
        "metadata": {"k": 1},
        "occurred_at": "2026-02-03T04:05:06Z",
    }
    record.update(fields)
    return record


def new_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def content_hash(record: Body) -> str:
    """The plugin's tie-break, computed independently (compact JSON metadata)."""
    metadata = json.dumps(record.get("metadata") or {}, separators=(",", ":"), ensure_ascii=False)
    text = f"{record['status']}\x1f{record.get('summary') or ''}\x1f{metadata}"
    return hashlib.sha256(text.encode()).hexdigest()


# -- the table ----------------------------------------------------------------------------


def test_table_has_the_unique_key_and_the_indexes_design_names(
    store_server: WordPressServer,
) -> None:
    indexes: dict[str, list[str]] = {}
    unique: set[str] = set()
    for row in store_server.sql(f"SHOW INDEX FROM {EVENTS}"):
        indexes.setdefault(row["Key_name"], []).append(row["Column_name"])
        if row["Non_unique"] == "0":
            unique.add(row["Key_name"])

    assert indexes["source_external_id"] == ["source", "external_id"]
    assert unique == {"PRIMARY", "source_external_id"}
    for column in ("occurred_at_us", "status", "received_at", "external_id", "post_id"):
        assert any(columns[0] == column for columns in indexes.values()), (column, indexes)


def test_wpdb_connects_without_client_found_rows(store_server: WordPressServer) -> None:
    # The upsert's created/updated/unchanged rests on affected rows counting
    # changed rows only: what wpdb's mysqli connection does unless a site sets
    # MYSQL_CLIENT_FLAGS. With that flag the store must still tell them apart.
    output = store_server.run_php(
        """
        $same = "UPDATE {$wpdb->options} SET option_value = option_value
            WHERE option_name = 'siteurl'";
        $default = $wpdb->query( $same );
        define( 'MYSQL_CLIENT_FLAGS', MYSQLI_CLIENT_FOUND_ROWS );
        $found = new wpdb( DB_USER, DB_PASSWORD, DB_NAME, DB_HOST );
        $found->set_prefix( $wpdb->prefix );
        $flagged = $found->query( $same );
        $GLOBALS['wpdb'] = $found;
        $event = array( 'source' => 'store',
            'external_id' => 'found-rows-' . wp_generate_password( 8, false ),
            'status' => 'a', 'summary' => '', 'metadata' => '{}', 'occurred_at_us' => 1000 );
        $results = array();
        foreach ( array( 1000, 1000, 999, 2000 ) as $us ) {
            $event['occurred_at_us'] = $us;
            $stored = Hookpress_Event_Store::transaction( function () use ( $event ) {
                return Hookpress_Event_Store::upsert( $event );
            } );
            $results[] = $stored['result'];
        }
        echo json_encode( array( $default, $flagged, $results ) );
        """
    )
    default, flagged, results = json.loads(output)
    assert default == 0
    assert flagged == 1
    assert results == ["created", "unchanged", "stale", "updated"]


# -- ordering -----------------------------------------------------------------------------


def test_results_follow_occurred_at_and_the_content_hash_breaks_ties(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    key = new_id()
    first = body(key, status="one", occurred_at="2026-02-03T04:05:06Z")
    same_time = [body(key, status=s, occurred_at="2026-02-03T04:05:06Z") for s in ("two", "three")]
    winner = max([first, *same_time], key=content_hash)

    assert client.post(site.ingest_url, json=first).json()["result"] == "created"
    assert client.post(site.ingest_url, json=first).json()["result"] == "unchanged"
    older = body(key, status="older", occurred_at="2026-02-03T04:05:05.999999Z")
    assert client.post(site.ingest_url, json=older).json()["result"] == "stale"
    current = first
    for version in same_time:
        replaces = content_hash(version) > content_hash(current)
        result = client.post(site.ingest_url, json=version).json()["result"]
        assert result == ("updated" if replaces else "stale"), (version, current)
        current = version if replaces else current
    assert rows_of(store_server, "store", key)[0]["status"] == winner["status"]
    # The winner of the tie, sent again, changes nothing; a later instant wins.
    assert client.post(site.ingest_url, json=winner).json()["result"] == "unchanged"
    later = body(key, status="later", occurred_at="2026-02-03T04:05:06.000001Z")
    assert client.post(site.ingest_url, json=later).json()["result"] == "updated"
    assert rows_of(store_server, "store", key)[0]["status"] == "later"
    assert projection_problems(store_server) == []


def test_equal_times_settle_on_the_same_version_whatever_the_arrival_order(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    versions = [body("x", status=f"s{n}", summary=f"version {n}") for n in range(6)]
    winner = max(versions, key=content_hash)
    stored = set()
    for run in range(3):
        key = new_id()
        order = versions[:]
        random.Random(run).shuffle(order)
        for version in order:
            response = client.post(site.ingest_url, json={**version, "external_id": key})
            assert response.status_code in (200, 201), response.text
        stored.add(rows_of(store_server, "store", key)[0]["status"])
    assert stored == {winner["status"]}


# -- concurrency --------------------------------------------------------------------------


def test_fifty_concurrent_posts_of_one_external_id_make_one_row_and_one_post(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    key = new_id()
    record = body(key)

    responses = concurrently(50, lambda _: client.post(site.ingest_url, json=record))

    assert sorted(r.status_code for r in responses) == [200] * 49 + [201], [
        r.text for r in responses if r.status_code not in (200, 201)
    ]
    assert sorted(r.json()["result"] for r in responses) == ["created"] + ["unchanged"] * 49
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(rows_of(store_server, "store", key)) == 1
    assert len(posts_titled(store_server, "store", key)) == 1
    assert projection_problems(store_server) == []


def test_fifty_concurrent_deliveries_with_one_idempotency_key_store_once_and_replay(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    key = new_id()
    record = body(key)
    headers = {"Idempotency-Key": f"event-{key}"}

    responses = concurrently(
        50, lambda _: client.post(site.ingest_url, json=record, headers=headers)
    )

    # The claim is a row lock held to the end of the first request: the others
    # wait for it and replay its answer (no 409 "in flight" any more).
    assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses]
    fresh = [r for r in responses if "Idempotent-Replayed" not in r.headers]
    assert len(fresh) == 1
    assert all(r.json() == fresh[0].json() for r in responses)
    assert len(rows_of(store_server, "store", key)) == 1
    assert len(posts_titled(store_server, "store", key)) == 1


def test_fifty_concurrent_posts_with_posts_off_make_one_row_and_no_post(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer, posts_off: None
) -> None:
    key = new_id()
    posts_before = count(store_server, "SELECT COUNT(*) FROM wp_posts")
    meta_before = count(store_server, "SELECT COUNT(*) FROM wp_postmeta")

    responses = concurrently(50, lambda _: client.post(site.ingest_url, json=body(key)))

    assert sorted(r.status_code for r in responses) == [200] * 49 + [201]
    created = next(r for r in responses if r.status_code == 201)
    assert created.json()["post_id"] is None
    assert created.json()["id"] == created.json()["event_id"]
    assert created.headers["Location"].endswith(f"/ai-guy/v1/events/{created.json()['id']}")
    assert len(rows_of(store_server, "store", key)) == 1
    assert count(store_server, "SELECT COUNT(*) FROM wp_posts") == posts_before
    assert count(store_server, "SELECT COUNT(*) FROM wp_postmeta") == meta_before


def test_twenty_interleaved_versions_store_the_newest_every_run(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    # 20 versions with shuffled times; the newest instant is shared by three
    # different versions, so the tie-break decides among them.
    seconds = [*range(17), 30, 30, 30]
    winners = set()
    for run in range(3):
        key = new_id()
        versions = [
            body(
                key,
                status=f"v{n}",
                summary=f"version {n} of run {run}",
                occurred_at=f"2026-03-01T00:00:{second:02d}Z",
            )
            for n, second in enumerate(seconds)
        ]
        newest = [v for v in versions if v["occurred_at"].endswith(":30Z")]
        expected = max(newest, key=content_hash)
        random.Random(100 + run).shuffle(versions)

        responses = concurrently(20, lambda i, v=versions: client.post(site.ingest_url, json=v[i]))

        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        assert sum(r.json()["result"] == "created" for r in responses) == 1
        row = rows_of(store_server, "store", key)[0]
        assert row["status"] == expected["status"]
        assert int(row["occurred_at_us"]) == NEWEST_US
        assert row["content_hash"] == content_hash(expected)
        winners.add(expected["status"])
        post = store_server.sql(
            f"SELECT meta_value FROM wp_postmeta WHERE post_id = {int(row['post_id'])} "
            f"AND meta_key = '{META_PREFIX}status'"
        )
        assert post == [{"meta_value": expected["status"]}]
    assert projection_problems(store_server) == []


# -- crashes ------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_php_killed_at_any_step_leaves_all_or_nothing(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer, step: str
) -> None:
    key = new_id()
    record = body(key)
    idempotency = f"event-{key}"
    try:
        with pytest.raises(httpx.TransportError):
            client.post(
                site.ingest_url,
                json=record,
                headers={"Idempotency-Key": idempotency, "X-Hookpress-Test-Kill-At": step},
            )
    finally:
        store_server.restart_php()

    committed = step == "committed"
    assert len(rows_of(store_server, "store", key)) == (1 if committed else 0)
    assert len(posts_titled(store_server, "store", key)) == (1 if committed else 0)
    claims = count(
        store_server,
        f"SELECT COUNT(*) FROM {IDEMPOTENCY} WHERE key_hash = "
        f"SHA2(CONCAT((SELECT ID FROM wp_users WHERE user_login = {quote(site.ingest_user)}),"
        f" CHAR(10), {quote(idempotency)}), 256)",
    )
    assert claims == (1 if committed else 0)
    assert projection_problems(store_server) == []

    # The deliverer's retry: stored once, at once (no claim is left to wait out).
    retry = client.post(site.ingest_url, json=record, headers={"Idempotency-Key": idempotency})
    assert retry.status_code == 201, retry.text
    assert ("Idempotent-Replayed" in retry.headers) is committed
    assert len(rows_of(store_server, "store", key)) == 1
    assert len(posts_titled(store_server, "store", key)) == 1
    assert projection_problems(store_server) == []


@pytest.mark.parametrize("step", ["upserted", "projected", "completed"])
def test_php_killed_during_an_update_keeps_the_previous_version_whole(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer, step: str
) -> None:
    key = new_id()
    old = body(key, status="old", occurred_at="2026-01-01T00:00:00Z")
    new = body(key, status="new", occurred_at="2026-01-02T00:00:00Z")
    assert client.post(site.ingest_url, json=old).status_code == 201
    try:
        with pytest.raises(httpx.TransportError):
            client.post(
                site.ingest_url,
                json=new,
                headers={"Idempotency-Key": f"u-{key}", "X-Hookpress-Test-Kill-At": step},
            )
    finally:
        store_server.restart_php()

    assert rows_of(store_server, "store", key)[0]["status"] == "old"
    assert projection_problems(store_server) == []
    retry = client.post(site.ingest_url, json=new, headers={"Idempotency-Key": f"u-{key}"})
    assert retry.json()["result"] == "updated", retry.text
    assert rows_of(store_server, "store", key)[0]["status"] == "new"
    assert projection_problems(store_server) == []


# -- behind a read/write-splitting driver ------------------------------------------------


@pytest.fixture
def splitter(store_server: WordPressServer) -> Iterator[Path]:
    """The db.php drop-in, with a replica snapshot taken now (and never updated)."""
    store_server.run_php(
        """
        global $wpdb;
        $wpdb->query( 'DROP DATABASE IF EXISTS wordpress_replica' );
        $wpdb->query( 'CREATE DATABASE wordpress_replica' );
        foreach ( $wpdb->get_col( 'SHOW TABLES' ) as $table ) {
            $wpdb->query( "CREATE TABLE wordpress_replica.$table LIKE wordpress.$table" );
            $wpdb->query( "INSERT INTO wordpress_replica.$table SELECT * FROM wordpress.$table" );
        }
        """
    )
    content = store_server.docroot / "wp-content"
    log = content / "hookpress-splitter.log"
    log.unlink(missing_ok=True)
    (content / "db.php").write_bytes((WP_FILES / "db-splitter.php").read_bytes())
    try:
        yield log
    finally:
        (content / "db.php").unlink()
        store_server.sql("DROP DATABASE IF EXISTS wordpress_replica")


def test_behind_a_splitter_with_a_stale_replica_the_store_stays_correct(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer, splitter: Path
) -> None:
    key = new_id()
    responses = concurrently(
        30,
        lambda i: client.post(
            site.ingest_url,
            json=body(key, status=f"s{i % 3}", occurred_at=f"2026-04-01T00:00:0{i % 3}Z"),
            headers={"Idempotency-Key": f"split-{key}-{i}"},
        ),
    )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert sum(r.json()["result"] == "created" for r in responses) == 1
    row = rows_of(store_server, "store", key)
    assert len(row) == 1
    assert row[0]["status"] == "s2"  # the newest instant
    assert len(posts_titled(store_server, "store", key)) == 1

    # A retry with the same key replays, though the replica has never seen it.
    again = client.post(
        site.ingest_url,
        json=body(key, status="s0", occurred_at="2026-04-01T00:00:00Z"),
        headers={"Idempotency-Key": f"split-{key}-0"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.json() == responses[0].json()

    routed = [line.split("\t", 1) for line in splitter.read_text().splitlines()]
    assert routed, "the splitter saw no statement"
    assert [q for _, q in routed if LOCKING.search(q)] == []
    ours = (EVENTS, IDEMPOTENCY)
    stale_reads = [q for target, q in routed if target == "replica" and any(t in q for t in ours)]
    assert stale_reads == []
    assert any(target == "replica" for target, _ in routed)  # the splitter did split
    assert projection_problems(store_server) == []


# -- what the hot path reads -------------------------------------------------------------


def test_ingest_reads_neither_postmeta_nor_posts_to_decide(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer, posts_off: None
) -> None:
    key = new_id()
    for record in (
        body(key),
        body(key),
        body(key, status="later", occurred_at="2026-09-09T00:00:00Z"),
        body(key, status="earlier", occurred_at="2020-01-01T00:00:00Z"),
    ):
        with captured_queries(store_server) as (headers, queries):
            response = client.post(
                site.ingest_url,
                json=record,
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code in (200, 201), response.text
        assert queries
        # Core reads wp_posts for the theme on every request; nothing reads events there.
        assert [q for q in queries if "wp_postmeta" in q or "ai_event" in q] == []
        assert [q for q in queries if LOCKING.search(q)] == []


def test_with_posts_on_postmeta_is_only_written_by_post_id(
    client: httpx.Client, site: WordPressSite, store_server: WordPressServer
) -> None:
    key = new_id()
    for record in (body(key), body(key, status="later", occurred_at="2026-09-09T00:00:00Z")):
        with captured_queries(store_server) as (headers, queries):
            assert client.post(site.ingest_url, json=record, headers=headers).status_code < 300
        # (wpdb reads the column list once per table: SHOW FULL COLUMNS.)
        meta = [q for q in queries if "wp_postmeta" in q and not q.startswith("SHOW")]
        assert meta
        assert [q for q in meta if "WHERE" in q and "meta_value" in q.split("WHERE", 1)[1]] == []
        assert all("post_id" in q for q in meta), meta


def test_every_query_of_the_ingest_and_read_paths_uses_an_index(
    client: httpx.Client,
    admin: httpx.Client,
    site: WordPressSite,
    store_server: WordPressServer,
) -> None:
    # Enough rows (events, posts, meta, keys) that the optimizer's choice is
    # the one it makes at volume: on a table of a few rows a scan is cheapest.
    if count(store_server, f"SELECT COUNT(*) FROM {EVENTS} WHERE source = 'bench'") == 0:
        seed_site(store_server, 20_000)
    key = new_id()
    requests: list[Callable[[dict[str, str]], httpx.Response]] = [
        lambda h: client.post(site.ingest_url, json=body(key), headers=h),
        lambda h: client.post(
            site.ingest_url,
            json=body(key, status="later", occurred_at="2026-09-09T00:00:00Z"),
            headers=h,
        ),
        lambda h: client.post(
            site.ingest_url,
            json=body("evt_777", source="bench", occurred_at="2027-01-01T00:00:00Z"),
            headers=h,
        ),
    ]
    events = f"{site.rest_base}/ai-guy/v1/events"
    for params in (
        {"external_id": "evt_123"},
        {"external_id": "evt_123", "source": "bench"},
        {"search": "evt_12"},
        {},
        {"orderby": "received_at"},
        {"source": "bench"},
        {"source": "bench", "orderby": "received_at", "order": "asc"},
        {"status": "failed"},
        {"status": "failed", "orderby": "received_at"},
        {"source": "bench", "status": "failed"},
    ):
        requests.append(lambda h, p=params: admin.get(events, params=p, headers=h))
    first_id = store_server.sql(f"SELECT MIN(id) AS id FROM {EVENTS}")[0]["id"]
    requests.append(lambda h: admin.get(f"{events}/{first_id}", headers=h))
    requests.append(
        lambda h: admin.get(
            f"{site.rest_base}/wp/v2/ai-events", params={"external_id": key}, headers=h
        )
    )
    requests.append(
        lambda h: admin.get(
            f"{site.rest_base}/wp/v2/ai-events", params={"source": "store"}, headers=h
        )
    )

    statements: list[str] = []
    for send in requests:
        with captured_queries(store_server) as (headers, queries):
            response = send(headers)
            assert response.status_code < 300, response.text
        statements.extend(queries)

    tables = (EVENTS, IDEMPOTENCY, "wp_posts", "wp_postmeta")
    problems = unindexed(store_server, statements, tables)
    assert problems == [], "\n".join(problems)
