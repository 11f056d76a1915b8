"""Uninstalling the plugin removes its data; stopping the harness leaves nothing running.

Runs on a second, throwaway site so the session's site stays intact for
every other test, whatever the order.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psutil

from hookpress.local.wordpress import WordPressServer

STATE = r"""
global $wpdb;
$ids = $wpdb->get_col("SELECT ID FROM {$wpdb->posts} WHERE post_type = 'ai_event'");
$in = implode(',', array_map('intval', $ids));
$meta = empty($ids) ? 0 : (int) $wpdb->get_var(
    "SELECT COUNT(*) FROM {$wpdb->postmeta} WHERE post_id IN ($in)"
);
$caps = array();
foreach (wp_roles()->roles as $name => $role) {
    foreach (array_keys($role['capabilities']) as $cap) {
        if (0 === strpos($cap, 'hookpress_') || preg_match('/ai_events?$/', $cap)) {
            $caps[] = "$name:$cap";
        }
    }
}
// Users: any role or capability of ours left in their meta, and their passwords.
$users = array();
foreach (get_users(array('fields' => 'all')) as $user) {
    $ours = array_values(array_filter(array_keys($user->caps), function ($cap) {
        return 0 === strpos($cap, 'hookpress_');
    }));
    $users[$user->user_login] = array(
        'ours' => $ours,
        'roles' => array_values($user->roles),
        'passwords' => count(WP_Application_Passwords::get_user_application_passwords($user->ID)),
    );
}
echo json_encode(array(
    'posts' => count($ids),
    'meta' => $meta,
    'options' => $wpdb->get_col(
        "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE 'hookpress\\_%'"
    ),
    'tables' => $wpdb->get_col("SHOW TABLES LIKE '%hookpress%'"),
    'role' => null !== get_role('hookpress_ingest'),
    'caps' => $caps,
    'cron' => (bool) wp_next_scheduled('hookpress_purge_idempotency'),
    'users' => $users,
));
"""


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

        before = json.loads(server.run_php(STATE))
        assert before["posts"] == 3
        assert before["meta"] > 0
        assert len(before["tables"]) == 3
        assert before["role"] is True
        assert "administrator:edit_ai_events" in before["caps"]
        assert "hookpress_allowlist" in before["options"]
        assert before["cron"] is True
        assert before["users"]["hookpress-ingest"]["roles"] == ["hookpress_ingest"]
        assert before["users"]["mixed"]["roles"] == ["subscriber", "hookpress_ingest"]
        assert before["users"]["admin"]["ours"] == ["hookpress_ingest_events"]

        server.uninstall_plugin()

        after = json.loads(server.run_php(STATE))
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
