"""WordPress at a million events: ``nox -s wpbench`` (``-- --events N``, default 1,000,000).

Two sites from the same code and configuration on the real MariaDB: the
floor holds 1,000 events, the volume site ``--events`` (each event a row in
the events table, an ``ai_event`` post with its seven meta rows, and a stored
Idempotency-Key, as a site that received them through deliver would hold).
Both are bulk-loaded server-side (``INSERT … SELECT`` from MariaDB's sequence
engine, 100,000 rows a statement). Every figure is measured on both sites in
alternation, request by request, so a noisy moment of this shared machine
lands on both, and reported as the ratio volume ÷ floor:

1. ingest p50 / p99 (new events, posts on — the default — and posts off),
   and updates of existing events: target p50 ≤ 1.5×, p99 ≤ 2×;
2. lookup by external id over REST (``ai-guy/v1/events?external_id=``, and
   ``wp/v2/ai-events?external_id=``) and the Events screen's first page:
   target ≤ 2×;
3. EXPLAIN of every statement those requests ran on the volume site: each
   table read through an index (asserted);
4. concurrency on the volume site: 50 concurrent posts of one external id
   make one row and one post; 20 interleaved versions with shuffled
   ``occurred_at`` (the newest instant shared by three) store the newest,
   the same one in each of three runs;
5. one batch of 100 records against 100 single posts (one after another,
   and 8 at a time): records per second, the ratio reported;
6. retention pruning and uninstall at volume: rows per second, and that
   uninstall finishes.

Writes ``bench/results/wordpress.{json,md}``; exits 1 when a target is
missed or a check fails.
"""

# ruff: noqa: E501, S311, S608 - Markdown rows on one line; seeded shuffles; SQL against throwaway sites
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import RESULTS, machine, percentile, write_json, write_markdown
from hookpress.local.wordpress import WordPressServer, WordPressSite
from tests.e2e.plugin_site import (
    EVENTS,
    IDEMPOTENCY,
    captured_profile,
    captured_queries,
    concurrently,
    install_test_hooks,
    projection_problems,
    seed_statements,
    unindexed,
)

COMMAND = "nox -s wpbench"
FLOOR_EVENTS = 1_000
CHUNK = 100_000
#: A buffer pool a site holding a million events would be given (the data is ~3 GiB).
MARIADB = ("--innodb-buffer-pool-size=1G", "--innodb-log-file-size=256M")
SOURCE = "bench"
TARGETS = {
    "ingest_p50": 1.5,
    "ingest_p99": 2.0,
    "lookup_p50": 2.0,
    "list_p50": 2.0,
}


@dataclass
class Site:
    """One benchmark site and its clients."""

    name: str
    server: WordPressServer
    events: int
    ingest: httpx.Client = field(init=False)
    admin: httpx.Client = field(init=False)
    browser: httpx.Client = field(init=False)

    @property
    def site(self) -> WordPressSite:
        return self.server.site

    def open(self) -> None:
        site = self.site
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        self.ingest = httpx.Client(
            auth=(site.ingest_user, site.app_password), timeout=300, limits=limits
        )
        self.admin = httpx.Client(
            auth=(site.admin_user, site.admin_app_password), timeout=300, limits=limits
        )
        self.browser = httpx.Client(timeout=300, follow_redirects=False)
        self.browser.get(f"{site.url}/wp-login.php")
        login = self.browser.post(
            f"{site.url}/wp-login.php",
            data={
                "log": site.admin_user,
                "pwd": site.admin_password,
                "wp-submit": "Log In",
                "testcookie": "1",
                "redirect_to": f"{site.url}/wp-admin/",
            },
        )
        if login.status_code != 302:
            raise SystemExit(f"{self.name}: wp-admin login failed ({login.status_code})")

    def close(self) -> None:
        for client in (self.ingest, self.admin, self.browser):
            client.close()


# -- seeding ----------------------------------------------------------------------------


def mariadb(server: WordPressServer, sql: str) -> None:
    """Run SQL with the mariadb client on the site's socket (no time limit)."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        raise SystemExit("the mariadb client is missing: install the Debian package mariadb-client")
    subprocess.run(  # noqa: S603 - fixed program, our SQL
        [client, f"--socket={server.db_socket}", "-uroot", "wordpress"],
        input=sql.encode(),
        stdout=subprocess.DEVNULL,
        check=True,
    )


def seed(site: Site) -> dict[str, Any]:
    """Bulk-load ``site.events`` events with their posts, meta and stored keys."""
    server = site.server
    author = int(
        server.sql("SELECT ID FROM wp_users WHERE user_login = 'hookpress-ingest'")[0]["ID"]
    )
    base = int(server.sql("SELECT COALESCE(MAX(ID), 0) + 1000 AS b FROM wp_posts")[0]["b"])
    started = time.perf_counter()
    for first in range(1, site.events + 1, CHUNK):
        last = min(site.events, first + CHUNK - 1)
        statements = seed_statements(first, last, post_base=base, author=author)
        mariadb(server, ";\n".join(statements) + ";")
    mariadb(server, f"ANALYZE TABLE {EVENTS}, {IDEMPOTENCY}, wp_posts, wp_postmeta;")
    seconds = time.perf_counter() - started
    return {
        "events": site.events,
        "seconds": round(seconds, 1),
        "events_per_s": round(site.events / seconds),
    }


# -- measuring -----------------------------------------------------------------------------


def record(external_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": SOURCE,
        "external_id": external_id,
        "status": "succeeded",
        "summary": "A benchmark event.",
        "metadata": {"model": "bench", "tokens": 42},
        "occurred_at": "2026-06-01T00:00:00Z",
    }
    body.update(fields)
    return body


def alternate(
    sites: list[Site], samples: int, request: Callable[[Site, int], httpx.Response]
) -> dict[str, list[float]]:
    """Send ``samples`` requests to each site, alternating; the latencies per site."""
    times: dict[str, list[float]] = {s.name: [] for s in sites}
    for n in range(samples):
        order = sites if n % 2 == 0 else list(reversed(sites))
        for site in order:
            started = time.perf_counter()
            response = request(site, n)
            elapsed = time.perf_counter() - started
            if response.status_code >= 300:
                raise SystemExit(f"{site.name}: {response.status_code} {response.text[:300]}")
            times[site.name].append(elapsed)
    return times


def compare(name: str, times: dict[str, list[float]], target: str | None) -> dict[str, Any]:
    floor, volume = times["floor"], times["volume"]
    row: dict[str, Any] = {"figure": name, "samples": len(floor)}
    for q in (50, 99):
        f, v = percentile(floor, q) * 1000, percentile(volume, q) * 1000
        row[f"floor_p{q}_ms"] = round(f, 2)
        row[f"volume_p{q}_ms"] = round(v, 2)
        row[f"ratio_p{q}"] = round(v / f, 3)
    if target == "ingest":
        row["targets"] = {"p50": TARGETS["ingest_p50"], "p99": TARGETS["ingest_p99"]}
        row["met"] = (
            row["ratio_p50"] <= TARGETS["ingest_p50"] and row["ratio_p99"] <= TARGETS["ingest_p99"]
        )
    elif target is not None:
        row["targets"] = {"p50": TARGETS[target]}
        row["met"] = row["ratio_p50"] <= TARGETS[target]
    return row


def set_posts(sites: list[Site], on: bool) -> None:
    for site in sites:
        site.server.sql(
            f"UPDATE wp_options SET option_value = '{1 if on else 0}' WHERE option_name = 'hookpress_create_posts'"
        )


def measure(sites: list[Site], samples: int) -> list[dict[str, Any]]:
    rows = []
    run = uuid.uuid4().hex[:8]
    rng = random.Random(7)

    def figure(
        name: str, n: int, request: Callable[[Site, int], httpx.Response], target: str | None
    ) -> None:
        rows.append(compare(name, alternate(sites, n, request), target))

    def new_event(prefix: str) -> Callable[[Site, int], httpx.Response]:
        def send(site: Site, n: int) -> httpx.Response:
            key = f"{prefix}-{run}-{n}"
            return site.ingest.post(
                site.site.ingest_url, json=record(key), headers={"Idempotency-Key": key}
            )

        return send

    figure("ingest, new event (posts on)", samples, new_event("new"), "ingest")

    def update(site: Site, n: int) -> httpx.Response:
        seq = (
            rng.randrange(1, FLOOR_EVENTS + 1)
            if site.name == "floor"
            else rng.randrange(1, site.events + 1)
        )
        body = record(
            f"evt_{seq}", status="refunded", occurred_at=f"2026-07-01T00:00:{n % 60:02d}.{n:06d}Z"
        )
        return site.ingest.post(
            site.site.ingest_url, json=body, headers={"Idempotency-Key": f"upd-{run}-{n}"}
        )

    figure("ingest, newer version of a stored event (posts on)", samples, update, "ingest")

    set_posts(sites, False)
    try:
        figure("ingest, new event (posts off)", samples, new_event("off"), "ingest")
    finally:
        set_posts(sites, True)

    def lookup(route: str) -> Callable[[Site, int], httpx.Response]:
        def get(site: Site, _: int) -> httpx.Response:
            external_id = f"evt_{rng.randrange(1, site.events + 1)}"
            return site.admin.get(
                f"{site.site.rest_base}/{route}", params={"external_id": external_id}
            )

        return get

    def screen(query: str) -> Callable[[Site, int], httpx.Response]:
        def get(site: Site, _: int) -> httpx.Response:
            return site.browser.get(
                f"{site.site.url}/wp-admin/admin.php?page=hookpress-events{query}"
            )

        return get

    lookups = max(50, samples // 2)
    for route in ("ai-guy/v1/events", "wp/v2/ai-events"):
        figure(f"lookup by external id, {route}", lookups, lookup(route), "lookup_p50")
    figure("Events screen, first page", lookups, screen(""), "list_p50")
    figure(
        "Events screen, filtered by status, by received_at",
        lookups,
        screen("&status=failed&orderby=received_at"),
        None,
    )
    return rows


# -- checks on the volume site ------------------------------------------------------------


def plans(site: Site) -> dict[str, Any]:
    """EXPLAIN every statement of the ingest and read paths on the volume site."""
    s = site.site
    events = f"{s.rest_base}/ai-guy/v1/events"
    key = f"plan-{uuid.uuid4().hex}"
    requests: dict[str, Callable[[dict[str, str]], httpx.Response]] = {
        "ingest (create)": lambda h: site.ingest.post(
            s.ingest_url, json=record(key), headers={**h, "Idempotency-Key": key}
        ),
        "ingest (update)": lambda h: site.ingest.post(
            s.ingest_url,
            json=record(key, status="x", occurred_at="2027-01-01T00:00:00Z"),
            headers=h,
        ),
        "ingest (stale)": lambda h: site.ingest.post(
            s.ingest_url, json=record(key, occurred_at="2020-01-01T00:00:00Z"), headers=h
        ),
        "ingest (replay)": lambda h: site.ingest.post(
            s.ingest_url, json=record(key), headers={**h, "Idempotency-Key": key}
        ),
        "batch of 3": lambda h: site.ingest.post(
            f"{s.ingest_url}/batch",
            json={"records": [{"record": record(f"{key}-{n}")} for n in range(3)]},
            headers=h,
        ),
        "events by external id": lambda h: site.admin.get(
            events, params={"external_id": "evt_4242"}, headers=h
        ),
        "events by source + external id": lambda h: site.admin.get(
            events, params={"external_id": "evt_4242", "source": SOURCE}, headers=h
        ),
        "events search prefix": lambda h: site.admin.get(
            events, params={"search": "evt_4242"}, headers=h
        ),
        "events newest": lambda h: site.admin.get(events, headers=h),
        "events by received_at": lambda h: site.admin.get(
            events, params={"orderby": "received_at"}, headers=h
        ),
        "events by source": lambda h: site.admin.get(events, params={"source": SOURCE}, headers=h),
        "events by status, received_at asc": lambda h: site.admin.get(
            events, params={"status": "failed", "orderby": "received_at", "order": "asc"}, headers=h
        ),
        "events by source + status": lambda h: site.admin.get(
            events, params={"source": SOURCE, "status": "failed"}, headers=h
        ),
        "one event": lambda h: site.admin.get(f"{events}/4242", headers=h),
        "wp/v2 by external id": lambda h: site.admin.get(
            f"{s.rest_base}/wp/v2/ai-events", params={"external_id": "evt_4242"}, headers=h
        ),
        "wp/v2 by source": lambda h: site.admin.get(
            f"{s.rest_base}/wp/v2/ai-events", params={"source": SOURCE}, headers=h
        ),
        "Events screen": lambda h: site.browser.get(
            f"{s.url}/wp-admin/admin.php?page=hookpress-events", headers=h
        ),
        "Events screen, search": lambda h: site.browser.get(
            f"{s.url}/wp-admin/admin.php?page=hookpress-events&s=evt_4242", headers=h
        ),
        "Events screen, one event": lambda h: site.browser.get(
            f"{s.url}/wp-admin/admin.php?page=hookpress-events&event=4242", headers=h
        ),
    }
    tables = (EVENTS, IDEMPOTENCY, "wp_posts", "wp_postmeta")
    report: dict[str, Any] = {"requests": {}, "unindexed": []}
    for name, send in requests.items():
        with captured_queries(site.server) as (headers, queries):
            response = send(headers)
            if response.status_code >= 300:
                raise SystemExit(f"plans: {name}: {response.status_code} {response.text[:300]}")
        ours = [q for q in queries if any(t in q for t in tables)]
        problems = unindexed(site.server, ours, tables)
        report["requests"][name] = {
            "statements": len(queries),
            "on_events_posts_or_meta": len(ours),
            "unindexed": len(problems),
        }
        report["unindexed"].extend(f"{name}: {p}" for p in problems)
    report["ok"] = not report["unindexed"]
    return report


def statement_shape(sql: str) -> str:
    """A statement with its literals replaced, so repeats of one statement group together."""
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "?", " ".join(sql.split()))
    return re.sub(r"\b\d+(\.\d+)?\b", "N", text)[:90]


def profile(sites: list[Site]) -> dict[str, Any]:
    """Where one ingest spends its database time, floor against volume (median of 20)."""
    result: dict[str, Any] = {}
    for site in sites:
        per_statement: dict[str, list[float]] = {}
        for _ in range(20):
            key = f"prof-{uuid.uuid4().hex}"
            with captured_profile(site.server) as (headers, timed):
                site.ingest.post(
                    site.site.ingest_url,
                    json=record(key),
                    headers={**headers, "Idempotency-Key": key},
                )
            for sql, seconds in timed:
                label = statement_shape(sql)
                per_statement.setdefault(label, []).append(seconds * 1000)
        top = sorted(per_statement.items(), key=lambda kv: -statistics.median(kv[1]))[:8]
        result[site.name] = {
            "statements": len(per_statement),
            "db_ms_median_total": round(
                sum(statistics.median(v) for v in per_statement.values()), 2
            ),
            "slowest": [
                {"statement": k, "median_ms": round(statistics.median(v), 3)} for k, v in top
            ],
        }
    return result


def concurrency(site: Site) -> dict[str, Any]:
    server, s = site.server, site.site
    key = f"conc-{uuid.uuid4().hex}"
    responses = concurrently(50, lambda _: site.ingest.post(s.ingest_url, json=record(key)))
    rows = server.sql(
        f"SELECT id, post_id FROM {EVENTS} WHERE source = '{SOURCE}' AND external_id = '{key}'"
    )
    posts = server.sql(
        f"SELECT ID FROM wp_posts WHERE post_type = 'ai_event' AND post_title = '{SOURCE}: {key}'"
    )
    one = {
        "requests": 50,
        "statuses": sorted({r.status_code for r in responses}),
        "created": sum(
            r.json().get("result") == "created" for r in responses if r.status_code < 300
        ),
        "rows": len(rows),
        "posts": len(posts),
    }
    one["ok"] = (
        one["rows"] == 1
        and one["posts"] == 1
        and one["created"] == 1
        and one["statuses"] == [200, 201]
    )

    def tie(body: dict[str, Any]) -> str:
        meta = json.dumps(body["metadata"], separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(
            f"{body['status']}\x1f{body['summary']}\x1f{meta}".encode()
        ).hexdigest()

    seconds = [*range(17), 30, 30, 30]
    runs = []
    for run in range(3):
        ext = f"order-{uuid.uuid4().hex}"
        versions = [
            record(
                ext,
                status=f"v{n}",
                summary=f"version {n}",
                occurred_at=f"2026-03-01T00:00:{sec:02d}Z",
            )
            for n, sec in enumerate(seconds)
        ]
        expected = max((v for v in versions if v["occurred_at"].endswith(":30Z")), key=tie)
        random.Random(run).shuffle(versions)
        answers = concurrently(20, lambda i, v=versions: site.ingest.post(s.ingest_url, json=v[i]))
        stored = server.sql(
            f"SELECT status FROM {EVENTS} WHERE source = '{SOURCE}' AND external_id = '{ext}'"
        )
        runs.append(
            {
                "statuses": sorted({a.status_code for a in answers}),
                "stored": stored[0]["status"] if stored else None,
                "expected": expected["status"],
            }
        )
    order = {
        "versions": 20,
        "runs": runs,
        "ok": all(r["stored"] == r["expected"] for r in runs)
        and len({r["stored"] for r in runs}) == 1,
    }
    problems = projection_problems(server)
    return {"one_external_id": one, "interleaved_versions": order, "projection_problems": problems}


def batch_vs_single(site: Site, rounds: int = 3) -> dict[str, Any]:
    s = site.site
    results: dict[str, list[float]] = {
        "batch": [],
        "single_sequential": [],
        "single_8_at_a_time": [],
    }
    for _ in range(rounds):
        tag = uuid.uuid4().hex[:8]
        records = [
            {"idempotency_key": f"b-{tag}-{n}", "record": record(f"b-{tag}-{n}")}
            for n in range(100)
        ]
        started = time.perf_counter()
        answer = site.ingest.post(f"{s.ingest_url}/batch", json={"records": records})
        elapsed = time.perf_counter() - started
        if answer.status_code != 207 or any(r["status"] != 201 for r in answer.json()["responses"]):
            raise SystemExit(f"batch: {answer.status_code} {answer.text[:300]}")
        results["batch"].append(100 / elapsed)

        started = time.perf_counter()
        for n in range(100):
            key = f"s-{tag}-{n}"
            if (
                site.ingest.post(
                    s.ingest_url, json=record(key), headers={"Idempotency-Key": key}
                ).status_code
                != 201
            ):
                raise SystemExit("single: not created")
        results["single_sequential"].append(100 / (time.perf_counter() - started))

        def one(n: int, tag: str = tag) -> int:
            key = f"p-{tag}-{n}"
            return site.ingest.post(
                s.ingest_url, json=record(key), headers={"Idempotency-Key": key}
            ).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(one, range(100)))
        if set(codes) != {201}:
            raise SystemExit(f"single, 8 at a time: {sorted(set(codes))}")
        results["single_8_at_a_time"].append(100 / (time.perf_counter() - started))
    median = {k: round(statistics.median(v), 1) for k, v in results.items()}
    return {
        "records": 100,
        "rounds": rounds,
        "records_per_s": median,
        "batch_vs_sequential": round(median["batch"] / median["single_sequential"], 2),
        "batch_vs_8_at_a_time": round(median["batch"] / median["single_8_at_a_time"], 2),
    }


def retention_and_uninstall(site: Site) -> dict[str, Any]:
    server = site.server
    # A retention that makes about the oldest 15 % of the seeded events old
    # (seeded received_at: 2025-01-01 + n × 31.536 s); counted against the job's own cutoff.
    oldest_kept = 1735689600 + 0.15 * site.events * 31.536
    days = int((time.time() - oldest_kept) // 86400)
    output = server.run_php(
        timeout=3600,
        code=f"""
        global $wpdb;
        $table = Hookpress_Event_Store::table();
        $cutoff = gmdate( 'Y-m-d H:i:s', time() - {days} * DAY_IN_SECONDS );
        $count = function () use ( $wpdb, $table, $cutoff ) {{
            return (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM {{$table}} WHERE received_at < %s", $cutoff ) );
        }};
        $total = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {{$table}}" );
        $old = $count();
        update_option( 'hookpress_retention_days', {days} );
        $started = microtime( true );
        $pruned = Hookpress_Retention::prune( 3600 );
        $seconds = microtime( true ) - $started;
        update_option( 'hookpress_retention_days', 0 );
        echo json_encode( array( $total, $old, $pruned, $seconds, $count() ) );
        """,
    )
    total, old, pruned, seconds, left_old = json.loads(output)
    orphans = len(projection_problems(server))
    posts_before = int(
        server.sql("SELECT COUNT(*) AS n FROM wp_posts WHERE post_type = 'ai_event'")[0]["n"]
    )
    meta_before = int(server.sql("SELECT COUNT(*) AS n FROM wp_postmeta")[0]["n"])
    started = time.perf_counter()
    server.uninstall_plugin(timeout=3600)
    uninstall_s = time.perf_counter() - started
    posts_after = int(
        server.sql("SELECT COUNT(*) AS n FROM wp_posts WHERE post_type = 'ai_event'")[0]["n"]
    )
    meta_after = int(server.sql("SELECT COUNT(*) AS n FROM wp_postmeta")[0]["n"])
    tables = server.sql("SHOW TABLES LIKE '%hookpress%'")
    return {
        "retention": {
            "events": total,
            "older_than_cutoff": old,
            "pruned": pruned,
            "left_older_than_cutoff": left_old,
            "seconds": round(seconds, 1),
            "events_per_s": round(pruned / seconds) if seconds else None,
            "projection_problems_after": orphans,
            "ok": pruned == old and left_old == 0 and orphans == 0,
        },
        "uninstall": {
            "ai_event_posts": posts_before,
            "postmeta_rows": meta_before,
            "seconds": round(uninstall_s, 1),
            "posts_left": posts_after,
            "postmeta_left": meta_after,
            "tables_left": len(tables),
            "ok": posts_after == 0 and not tables,
        },
    }


# -- the run -------------------------------------------------------------------------------


def start(stack: ExitStack, workdir: Path, name: str, events: int) -> Site:
    server = stack.enter_context(
        WordPressServer(workdir / name, workers=8, mariadb_options=MARIADB)
    )
    server.set_options(rate_per_minute=1_000_000, burst=1_000_000)
    install_test_hooks(server)
    site = Site(name, server, events)
    site.open()
    stack.callback(site.close)
    return site


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# WordPress at a million events",
        "",
        f"Command: `{COMMAND}`" + (f" `-- {data['args']}`" if data["args"] else ""),
        "",
        f"Floor: {data['floor_events']:,} events; volume: {data['events']:,} events, each a row, an `ai_event` post with 7 meta rows and a stored Idempotency-Key. "
        f"Both sites: same code, MariaDB {data['mariadb']}, `{' '.join(MARIADB)}`, `php -S` with 8 workers; requests alternate between the sites. "
        f"Seeding (server-side `INSERT … SELECT` from the sequence engine): {data['seed']['volume']['seconds']} s for the volume site "
        f"({data['seed']['volume']['events_per_s']:,} events/s).",
        "",
        "## Latency, volume ÷ floor",
        "",
        "| figure | n | floor p50 / p99 ms | volume p50 / p99 ms | ratio p50 | ratio p99 | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in data["latency"]:
        targets = row.get("targets")
        target = ", ".join(f"{k} ≤ {v}" for k, v in targets.items()) if targets else "(reported)"
        met = {True: "yes", False: "**no**"}.get(row.get("met"), "")
        lines.append(
            f"| {row['figure']} | {row['samples']} | {row['floor_p50_ms']} / {row['floor_p99_ms']} | "
            f"{row['volume_p50_ms']} / {row['volume_p99_ms']} | {row['ratio_p50']} | {row['ratio_p99']} | {target} | {met} |"
        )
    plans_ = data["plans"]
    lines += [
        "",
        "## EXPLAIN on the volume site",
        "",
        f"Every statement on `{EVENTS}`, `{IDEMPOTENCY}`, `wp_posts` and `wp_postmeta` run by these requests, explained on the volume site: "
        f"**{'every table read through an index' if plans_['ok'] else 'UNINDEXED READS FOUND'}**.",
        "",
        "| request | statements | on events/posts/meta | unindexed |",
        "|---|---|---|---|",
    ]
    for name, info in plans_["requests"].items():
        lines.append(
            f"| {name} | {info['statements']} | {info['on_events_posts_or_meta']} | {info['unindexed']} |"
        )
    for problem in plans_["unindexed"]:
        lines.append(f"\n    {problem}")
    c = data["concurrency"]
    one, order = c["one_external_id"], c["interleaved_versions"]
    lines += [
        "",
        "## Concurrency on the volume site",
        "",
        f"- 50 concurrent posts of one external id: statuses {one['statuses']}, {one['created']} created, "
        f"{one['rows']} row, {one['posts']} post — **{'ok' if one['ok'] else 'FAILED'}**.",
        f"- 20 interleaved versions, shuffled `occurred_at`, the newest instant shared by three: stored "
        f"{[r['stored'] for r in order['runs']]}, expected {[r['expected'] for r in order['runs']]} — **{'ok' if order['ok'] else 'FAILED'}**.",
        f"- Posts and rows disagree: {len(c['projection_problems'])} ways.",
        "",
        "## Batch of 100 against 100 single posts (volume site)",
        "",
        "| how | records/s (median of 3) |",
        "|---|---|",
    ]
    b = data["batch"]
    for how, value in b["records_per_s"].items():
        lines.append(f"| {how.replace('_', ' ')} | {value} |")
    lines += [
        "",
        f"Batch ÷ single one after another: **{b['batch_vs_sequential']}×**; batch ÷ single 8 at a time: **{b['batch_vs_8_at_a_time']}×**.",
        "",
        "## Retention and uninstall at volume",
        "",
    ]
    r, u = data["retention_uninstall"]["retention"], data["retention_uninstall"]["uninstall"]
    lines += [
        f"- Retention pruned {r['pruned']:,} of {r['events']:,} events (all {r['older_than_cutoff']:,} older than the cutoff) with their posts and meta in "
        f"{r['seconds']} s ({r['events_per_s']:,} events/s); {r['left_older_than_cutoff']} old left — **{'ok' if r['ok'] else 'FAILED'}**.",
        f"- Uninstall removed {u['ai_event_posts']:,} posts and their meta ({u['postmeta_rows']:,} meta rows before) in {u['seconds']} s; "
        f"{u['posts_left']} posts, {u['tables_left']} tables left — **{'ok' if u['ok'] else 'FAILED'}**.",
        "",
        "## Where an ingest spends its database time (median of 20, ms)",
        "",
    ]
    for name, prof in data["profile"].items():
        lines.append(
            f"**{name}** — {prof['statements']} distinct statements, {prof['db_ms_median_total']} ms in the database:"
        )
        lines.append("")
        for item in prof["slowest"]:
            lines.append(f"- {item['median_ms']} ms — `{item['statement']}`")
        lines.append("")
    lines.append(
        f"Measured {data['machine']['measured_at']} on {data['machine']['cpus']} CPUs ({data['machine']['cpu_model']})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events on the volume site")
    parser.add_argument(
        "--samples", type=int, default=400, help="ingest requests per site and figure"
    )
    args = parser.parse_args(argv)
    if args.events < 10 * FLOOR_EVENTS:
        parser.error(f"--events must be at least {10 * FLOOR_EVENTS}")
    given = " ".join(argv if argv is not None else sys.argv[1:])
    data: dict[str, Any] = {
        "command": COMMAND,
        "args": given,
        "floor_events": FLOOR_EVENTS,
        "events": args.events,
    }
    with tempfile.TemporaryDirectory(prefix="hookpress-wpbench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        floor = start(stack, workdir, "floor", FLOOR_EVENTS)
        volume = start(stack, workdir, "volume", args.events)
        data["mariadb"] = floor.server.sql("SELECT VERSION() AS v")[0]["v"]
        print(f"seeding {FLOOR_EVENTS:,} and {args.events:,} events …", flush=True)
        data["seed"] = {"floor": seed(floor), "volume": seed(volume)}
        print(f"seeded: {data['seed']}", flush=True)
        sites = [floor, volume]
        alternate(
            sites,
            20,
            lambda s, n: s.ingest.post(s.site.ingest_url, json=record(f"warm-{uuid.uuid4().hex}")),
        )
        print("measuring latency …", flush=True)
        data["latency"] = measure(sites, args.samples)
        print("explaining …", flush=True)
        data["plans"] = plans(volume)
        data["profile"] = profile(sites)
        print("concurrency …", flush=True)
        data["concurrency"] = concurrency(volume)
        print("batch against single …", flush=True)
        data["batch"] = batch_vs_single(volume)
        print("retention and uninstall …", flush=True)
        data["retention_uninstall"] = retention_and_uninstall(volume)
    data["machine"] = machine()
    checks = [row.get("met", True) for row in data["latency"]]
    checks += [
        data["plans"]["ok"],
        data["concurrency"]["one_external_id"]["ok"],
        data["concurrency"]["interleaved_versions"]["ok"],
        not data["concurrency"]["projection_problems"],
        data["retention_uninstall"]["retention"]["ok"],
        data["retention_uninstall"]["uninstall"]["ok"],
    ]
    data["ok"] = all(checks)
    write_json(RESULTS / "wordpress.json", data)
    write_markdown(RESULTS / "wordpress.md", markdown(data))
    print((RESULTS / "wordpress.md").read_text())
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
