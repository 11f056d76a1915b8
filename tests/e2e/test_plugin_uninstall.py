"""Uninstalling removes the plugin's data in bulk; upgrading from version 1 keeps it.

Each runs on a throwaway site of its own so the session's site stays intact
for every other test, whatever the order; stopping the harness leaves
nothing running.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psutil

from hookpress.local.wordpress import WordPressServer

PHP = Path(__file__).resolve().parent / "php"
STATE = PHP / "plugin-state.php"  # what of the plugin the site holds, as JSON


def _children_under(path: Path) -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(str(path) in part for part in child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_uninstall_removes_posts_meta_options_tables_role_and_caps(tmp_path: Path) -> None:
    workdir = tmp_path / "uninstall-site"
    with WordPressServer(workdir, workers=2) as server:
        site = server.site
        with httpx.Client(auth=(site.ingest_user, site.app_password), timeout=60) as client:
            for number in range(3):
                response = client.post(
                    site.ingest_url,
                    json={
                        "source": "e2e",
                        "external_id": f"evt_uninstall_{number}",
                        "status": "done",
                        "occurred_at": "2026-01-01T00:00:00Z",
                    },
                    headers={"Idempotency-Key": f"uninstall-{number}"},
                )
                assert response.status_code == 201, response.text

        # A second ingest user, one with the role beside another, and a
        # per-user grant of the capability.
        server.create_user("ingest-two", "hookpress_ingest")
        server.create_user("mixed", "subscriber")
        server.run_php(
            "get_user_by('login', 'mixed')->add_role('hookpress_ingest');"
            "get_user_by('login', 'admin')->add_cap('hookpress_ingest_events');"
        )
        # Bulk-seeded events beyond one chunk (5,000), and a blog post that must survive.
        server.sql(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, "
            "post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, "
            "post_modified_gmt, post_content_filtered, post_type) "
            "SELECT 2, NOW(), UTC_TIMESTAMP(), '', CONCAT('bulk: ', seq), '', 'publish', "
            "CONCAT('bulk-', seq), '', '', NOW(), UTC_TIMESTAMP(), '', 'ai_event' "
            "FROM seq_1_to_12000"
        )
        server.sql(
            "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) SELECT ID, 'external_id', "
            "post_name FROM wp_posts WHERE post_type = 'ai_event' AND post_title LIKE 'bulk: %'"
        )
        server.run_php("add_post_meta(wp_insert_post(array('post_title' => 'Kept')), 'kept', 1);")

        before = json.loads(server.run_php_file(STATE))
        assert before["posts"] == 12_003
        assert before["meta"] > 0
        assert len(before["tables"]) == 3
        assert before["others"] == 1
        assert before["role"] is True
        assert "administrator:edit_ai_events" in before["caps"]
        assert "hookpress_allowlist" in before["options"]
        assert before["cron"] is True
        assert before["users"]["hookpress-ingest"]["roles"] == ["hookpress_ingest"]
        assert before["users"]["mixed"]["roles"] == ["subscriber", "hookpress_ingest"]
        assert before["users"]["admin"]["ours"] == ["hookpress_ingest_events"]

        server.uninstall_plugin()

        after = json.loads(server.run_php_file(STATE))
        users = after.pop("users")
        # The role is off every user, and no capability of ours is left on any.
        assert {login: user["ours"] for login, user in users.items()} == {
            login: [] for login in users
        }
        assert users["mixed"]["roles"] == ["subscriber"]
        assert users["mixed"]["passwords"] == 1  # still someone: keeps its password
        # Left with no role at all, an ingest user also loses its passwords.
        assert users["hookpress-ingest"] == {"ours": [], "roles": [], "passwords": 0}
        assert users["ingest-two"] == {"ours": [], "roles": [], "passwords": 0}
        assert users["admin"]["roles"] == ["administrator"]
        assert after == {
            "posts": 0,
            "meta": 0,
            "options": [],
            "tables": [],
            "role": False,
            "caps": [],
            "cron": False,
            "others": 1,
        }
        port = server.port
        processes = _children_under(workdir)
        names = sorted(p.name() for p in processes)
        assert any(name.startswith("php") for name in names), names
        assert "mariadbd" in names, names

    # The context manager stopped everything it started and freed the port.
    _, alive = psutil.wait_procs(processes, timeout=5)
    assert alive == []
    assert _children_under(workdir) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


V1_SITE = PHP / "v1-site.php"  # a site as version 1 of the plugin left it


def test_upgrade_from_version_1_moves_events_into_the_table(tmp_path: Path) -> None:
    with WordPressServer(tmp_path / "upgrade-site", workers=2) as server:
        site = server.site
        server.run_php_file(V1_SITE)

        server.run_php("Hookpress_Installer::maybe_upgrade();")

        rows = server.sql(
            "SELECT source, external_id, status, summary, metadata, occurred_at_us, "
            "received_at, post_id FROM wp_hookpress_events ORDER BY external_id"
        )
        assert [(r["external_id"], r["status"], r["metadata"]) for r in rows] == [
            ("v1-a", "succeeded", '{"n":1}'),
            ("v1-b", "failed", "{}"),
        ]
        assert all(r["occurred_at_us"] == "1746421505000000" for r in rows)
        assert all(r["received_at"].startswith("2025-05-06 06:06:06") for r in rows)
        assert server.sql("SHOW TABLES LIKE 'wp_hookpress_events_v1'") == []
        assert server.run_php("echo get_option('hookpress_db_version');") != "1"

        # Redelivered as it was: unchanged, and the old post is still its post.
        with httpx.Client(auth=(site.ingest_user, site.app_password), timeout=60) as client:
            again = client.post(
                site.ingest_url,
                json={
                    "source": "legacy",
                    "external_id": "v1-a",
                    "status": "succeeded",
                    "summary": "Old summary",
                    "metadata": {"n": 1},
                    "occurred_at": "2025-05-05T05:05:05Z",
                },
            )
        assert again.status_code == 200, again.text
        assert again.json()["result"] == "unchanged"
        assert again.json()["id"] == int(rows[0]["post_id"])
