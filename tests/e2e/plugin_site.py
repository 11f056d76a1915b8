"""Helpers for the plugin's store tests and the WordPress benchmark.

A site started by :class:`~hookpress.local.wordpress.WordPressServer` gets
the test-only must-use plugin ``tests/e2e/wp/hookpress-test-hooks.php``
(kill PHP at a named step, capture a request's SQL) and, when a test asks,
the read/write-splitting ``db.php`` drop-in. Statements are checked with
``EXPLAIN`` on the real MariaDB.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hookpress.local.wordpress import WordPressServer

WP_FILES = Path(__file__).resolve().parent / "wp"
EVENTS = "wp_hookpress_events"
#: How the projection names an event field in postmeta (Hookpress_Post_Type::meta_key()).
META_PREFIX = "_hookpress_"
INGEST_USER = "hookpress-ingest"
IDEMPOTENCY = "wp_hookpress_idempotency"

#: Statements that would make the store depend on a lock function (or a table lock).
LOCKING = re.compile(r"\b(GET_LOCK|RELEASE_LOCK|IS_FREE_LOCK|IS_USED_LOCK|LOCK\s+TABLES)\b", re.I)

#: Plans that read no table at all (the optimizer answered from constants).
NO_READ = re.compile(
    r"Impossible WHERE|Select tables optimized away|no matching row in const table"
    r"|No matching min/max row|Const row not found",
    re.I,
)

#: The steps Hookpress_Event_Store announces, in order (kill points).
STEPS = ("claimed", "upserted", "projected", "linked", "completed", "committed")


T = TypeVar("T")


def concurrently(count: int, send: Callable[[int], T]) -> list[T]:
    """Run ``send(0)`` … ``send(count - 1)`` in threads released at the same instant."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return send(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def install_test_hooks(server: WordPressServer) -> None:
    """Copy the test-only must-use plugin into the site."""
    target = server.docroot / "wp-content" / "mu-plugins"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(WP_FILES / "hookpress-test-hooks.php", target / "hookpress-test-hooks.php")


def count(server: WordPressServer, statement: str) -> int:
    """The single number a COUNT statement returns."""
    rows = server.sql(statement)
    return int(next(iter(rows[0].values())))


def rows_of(server: WordPressServer, source: str, external_id: str) -> list[dict[str, Any]]:
    """The events-table rows of one key (0 or 1)."""
    return server.sql(
        f"SELECT id, status, summary, metadata, occurred_at_us, post_id, "
        f"LOWER(HEX(content_hash)) AS content_hash FROM {EVENTS} "
        f"WHERE source = {quote(source)} AND external_id = {quote(external_id)}"
    )


def posts_titled(server: WordPressServer, source: str, external_id: str) -> list[dict[str, Any]]:
    """ai_event posts of one key, by their title (not through the table)."""
    return server.sql(
        "SELECT ID, post_status FROM wp_posts WHERE post_type = 'ai_event' "
        f"AND post_title = {quote(f'{source}: {external_id}')}"
    )


#: Each way posts and rows can disagree, as a query that finds the instances.
_DISAGREEMENTS = {
    "posts without a row": f"SELECT p.ID FROM wp_posts p LEFT JOIN {EVENTS} e ON e.post_id = p.ID "
    "WHERE p.post_type = 'ai_event' AND e.id IS NULL",
    "rows linked to no post": f"SELECT e.id, e.post_id FROM {EVENTS} e "
    "LEFT JOIN wp_posts p ON p.ID = e.post_id WHERE e.post_id > 0 AND p.ID IS NULL",
    "posts shared by rows": f"SELECT post_id, COUNT(*) AS n FROM {EVENTS} WHERE post_id > 0 "
    "GROUP BY post_id HAVING n > 1",
    "posts showing another version than their row": f"SELECT e.id FROM {EVENTS} e "
    f"JOIN wp_postmeta m ON m.post_id = e.post_id AND m.meta_key = '{META_PREFIX}status' "
    "WHERE m.meta_value <> e.status",
}


def projection_problems(server: WordPressServer) -> list[str]:
    """Every way the posts and the table disagree (empty when consistent); one php run."""
    found = json.loads(
        server.run_php(
            "global $wpdb; $out = array();"
            f"foreach ( json_decode( {quote(json.dumps(_DISAGREEMENTS))}, true ) as $what => $sql )"
            " { $rows = $wpdb->get_results( $sql, ARRAY_A );"
            " if ( $rows ) { $out[ $what ] = $rows; } }"
            " echo json_encode( (object) $out );"
        )
    )
    return [f"{what}: {rows}" for what, rows in found.items()]


def quote(value: str) -> str:
    """A SQL string literal (tests build their own statements)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def captured_profile(
    server: WordPressServer,
) -> Iterator[tuple[dict[str, str], list[tuple[str, float]]]]:
    """Headers that make a request record its SQL, and the list of (statement,
    seconds) it fills on exit. Use the headers on exactly one request inside the block.
    """
    token = uuid.uuid4().hex
    timed: list[tuple[str, float]] = []
    yield {"X-Hookpress-Test-Queries": token}, timed
    path = server.docroot / "wp-content" / "hookpress-test-queries" / f"{token}.json"
    timed.extend((str(sql), float(seconds)) for sql, seconds in json.loads(path.read_text()))
    path.unlink()


@contextmanager
def captured_queries(server: WordPressServer) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Headers that make a request record its SQL, and the statements it fills on exit.

    Use the headers on exactly one request inside the block.
    """
    queries: list[str] = []
    with captured_profile(server) as (headers, timed):
        yield headers, queries
    queries.extend(sql for sql, _ in timed)


def explain_all(server: WordPressServer, statements: list[str]) -> list[list[dict[str, Any]]]:
    """EXPLAIN of each statement (SELECT, UPDATE or DELETE), in one php run."""
    if not statements:
        return []
    output = server.run_php(
        "global $wpdb; $out = array();"
        f"foreach ( json_decode( {quote(json.dumps(statements))}, true ) as $sql )"
        " { $out[] = $wpdb->get_results( 'EXPLAIN ' . $sql, ARRAY_A ); }"
        " echo json_encode( $out );",
        timeout=600,
    )
    plans: list[list[dict[str, Any]]] = json.loads(output)
    return plans


def unindexed(
    server: WordPressServer, statements: Iterable[str], tables: Iterable[str]
) -> list[str]:
    """Statements on ``tables`` whose plan reads a table without an index.

    A plan row fails when its access type is ALL (a full scan) or it names no
    key. Derived tables (``<derivedN>``, the capped count's outer query over
    at most MAX_COUNT + 1 rows it built with an index) are not tables.
    INSERT statements have no plan worth the name: the upsert finds its row
    by the unique key by definition.
    """
    names = tuple(tables)
    chosen = [
        text
        for text in dict.fromkeys(s.strip() for s in statements)
        if re.match(r"(SELECT|UPDATE|DELETE)\b", text, re.I)
        and any(re.search(rf"\b{re.escape(t)}\b", text) for t in names)
    ]
    found = []
    for text, plan in zip(chosen, explain_all(server, chosen), strict=True):
        for row in plan:
            table = str(row.get("table") or "")
            if table.startswith(("<derived", "<union")):
                continue
            if (row.get("type") == "ALL" or not row.get("key")) and not NO_READ.search(
                str(row.get("Extra") or "")
            ):
                found.append(f"{text}\n    -> {row}")
    return found


def seed_statements(
    first: int, last: int, *, post_base: int, author: int, id_base: int = 0
) -> list[str]:
    """SQL that bulk-loads events ``first`` … ``last`` as deliver would have left them.

    Each event ``n`` is a row (id ``id_base + n``, source ``bench``, external id
    ``evt_<n>``, statuses cycling through five values, occurred and received
    31.536 s apart from 2025-01-01, so a million span a year), its post (id
    ``post_base + n``) with the seven meta rows the projection writes, and a
    stored Idempotency-Key, all by INSERT … SELECT from MariaDB's sequence
    engine. The content hash is the plugin's, so a redelivery is ``unchanged``.
    """
    seq = f"seq_{first}_to_{last}"
    status = "ELT(1 + seq % 5, 'succeeded', 'failed', 'pending', 'canceled', 'refunded')"
    summary = "CONCAT('Seeded event ', seq)"
    metadata = "CONCAT('{\"n\":', seq, '}')"
    occurred = "1735689600000000 + seq * 31536000"
    received = "TIMESTAMPADD(MICROSECOND, seq * 31536000, '2025-01-01 00:00:00')"
    rfc = f"DATE_FORMAT({received}, '%Y-%m-%dT%H:%i:%sZ')"
    meta = {
        "external_id": "CONCAT('evt_', seq)",
        "source": "'bench'",
        "status": status,
        "summary": summary,
        "metadata": metadata,
        "occurred_at": rfc,
        "received_at": rfc,
    }
    return [
        f"INSERT INTO {EVENTS} (id, source, external_id, status, summary, metadata, "
        "occurred_at_us, content_hash, received_at, post_id) "
        f"SELECT {id_base} + seq, 'bench', CONCAT('evt_', seq), {status}, {summary}, "
        f"{metadata}, {occurred}, "
        f"UNHEX(SHA2(CONCAT_WS(CHAR(31), {status}, {summary}, {metadata}), 256)), {received}, "
        f"{post_base} + seq FROM {seq}",
        "INSERT INTO wp_posts (ID, post_author, post_date, post_date_gmt, post_content, "
        "post_title, post_excerpt, post_status, comment_status, ping_status, post_name, to_ping, "
        "pinged, post_modified, post_modified_gmt, post_content_filtered, post_type) "
        f"SELECT {post_base} + seq, {author}, {received}, {received}, {summary}, "
        "CONCAT('bench: evt_', seq), '', 'publish', 'closed', 'closed', "
        f"CONCAT('hookpress-event-', seq), '', '', {received}, {received}, '', 'ai_event' "
        f"FROM {seq}",
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
        + " UNION ALL ".join(
            f"SELECT {post_base} + seq, '{META_PREFIX}{key}', {value} FROM {seq}"
            for key, value in meta.items()
        ),
        f"INSERT INTO {IDEMPOTENCY} (key_hash, request_hash, state, status_code, response, "
        f"created_at, expires_at) SELECT SHA2(CONCAT({author}, CHAR(10), 'seed-', seq), 256), "
        "SHA2(seq, 256), 'done', 201, CONCAT('{\"id\":', seq, '}'), UTC_TIMESTAMP(), "
        f"UTC_TIMESTAMP() + INTERVAL 1 DAY FROM {seq}",
    ]


def seed_site(server: WordPressServer, events: int) -> None:
    """Bulk-load ``events`` seeded events into an empty table, with posts (see seed_statements)."""
    author = int(
        server.sql(f"SELECT ID FROM wp_users WHERE user_login = {quote(INGEST_USER)}")[0]["ID"]
    )
    base = int(server.sql("SELECT COALESCE(MAX(ID), 0) + 1000 AS b FROM wp_posts")[0]["b"])
    ids = int(server.sql(f"SELECT COALESCE(MAX(id), 0) + 1000 AS b FROM {EVENTS}")[0]["b"])
    for statement in seed_statements(1, events, post_base=base, author=author, id_base=ids):
        server.sql(statement)
    server.sql(f"ANALYZE TABLE {EVENTS}, {IDEMPOTENCY}, wp_posts, wp_postmeta")
