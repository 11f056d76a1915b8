"""What a plugin reviewer asks for: update channel, meta keys, clock, failures, upgrades.

Everything here runs against the real WordPress and MariaDB: the bucket's
clock is moved with MariaDB's own ``SET timestamp`` across a real daylight
saving change (the zone loaded from the system's tzdata), tables are made to
fail by renaming them, and the error answers are read from a site running
with ``WP_DEBUG`` and ``WP_DEBUG_DISPLAY`` on.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite

from .conftest import OUTSIDE_ADDRESS

#: Hookpress_Installer::DB_VERSION: what an upgrade leaves in hookpress_db_version.
DB_VERSION = "3"

NewEvent = Callable[..., dict[str, Any]]
SetOptions = Callable[..., None]

META_NAMES = [
    "external_id",
    "source",
    "status",
    "summary",
    "metadata",
    "occurred_at",
    "received_at",
]


def _php_json(server: WordPressServer, code: str) -> Any:
    return json.loads(server.run_php(code))


# -- Update URI ------------------------------------------------------------------


def test_update_uri_is_false_in_the_header_and_in_the_update_check(
    wordpress_server: WordPressServer,
) -> None:
    # A plugin in the wordpress.org directory already uses the "hookpress"
    # slug. WordPress sends every plugin's headers to api.wordpress.org, which
    # offers no update for a plugin whose Update URI is not its own.
    found = _php_json(
        wordpress_server,
        r"""
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        $header = get_plugin_data(WP_PLUGIN_DIR . '/hookpress/hookpress.php', false, false);
        $sent = null;
        add_filter('pre_http_request', function ($pre, $args, $url) use (&$sent) {
            if (false !== strpos($url, 'plugins/update-check')) {
                $sent = json_decode($args['body']['plugins'], true);
            }
            return new WP_Error('offline', 'no calls home from a test');
        }, 10, 3);
        delete_site_transient('update_plugins');
        wp_update_plugins();
        echo json_encode(array(
            'header' => $header['UpdateURI'],
            'sent' => $sent['plugins']['hookpress/hookpress.php']['UpdateURI'],
        ));
        """,
    )

    assert found == {"header": "false", "sent": "false"}


# -- meta keys -------------------------------------------------------------------


def test_meta_keys_are_prefixed_and_exposed_under_plain_names(
    wordpress_server: WordPressServer,
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
) -> None:
    created = ingest_client.post(wordpress.ingest_url, json=new_event())
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]

    stored = _php_json(wordpress_server, f"echo json_encode(array_keys(get_post_meta({post_id})));")
    shown = admin_client.get(f"{wordpress.rest_base}/wp/v2/ai-events/{post_id}").json()["meta"]

    assert sorted(stored) == sorted(f"_hookpress_{name}" for name in META_NAMES)
    assert sorted(shown) == sorted(META_NAMES)
    assert shown["status"] == "succeeded"


def test_plain_meta_names_stay_unprotected_for_other_post_types(
    wordpress_server: WordPressServer,
) -> None:
    found = _php_json(
        wordpress_server,
        "$out = array();"
        f"foreach ({json.dumps(META_NAMES).replace('[', 'array(').replace(']', ')')} as $name) {{"
        "  $out[$name] = array(is_protected_meta($name, 'post'),"
        "                      is_protected_meta('_hookpress_' . $name, 'post'));"
        "}"
        "echo json_encode($out);",
    )

    # A blog post's "status" or "source" custom field is its owner's to edit;
    # the events' own keys are hidden from the Custom Fields box.
    assert found == {name: [False, True] for name in META_NAMES}


def test_upgrade_moves_old_meta_keys_of_events_only(wordpress_server: WordPressServer) -> None:
    found = _php_json(
        wordpress_server,
        r"""
        $event = wp_insert_post(array('post_type' => 'ai_event', 'post_status' => 'publish',
            'post_title' => 'v1 event', 'meta_input' => array(
                'external_id' => 'evt_v1', 'source' => 'v1', 'status' => 'old')), true);
        // A delivery during the upgrade already wrote the new key: it is newer.
        $raced = wp_insert_post(array('post_type' => 'ai_event', 'post_status' => 'publish',
            'post_title' => 'raced', 'meta_input' => array(
                'status' => 'older', '_hookpress_status' => 'newer')), true);
        $blog = wp_insert_post(array('post_type' => 'post', 'post_status' => 'draft',
            'post_title' => 'a blog post',
            'meta_input' => array('status' => 'mine', 'source' => 'me')), true);
        update_option('hookpress_db_version', '1');
        Hookpress_Installer::maybe_upgrade();
        $meta = function ($id) {
            $all = get_post_meta($id);
            ksort($all);
            return array_map(function ($values) { return $values; }, $all);
        };
        echo json_encode(array(
            'event' => $meta($event), 'raced' => $meta($raced), 'blog' => $meta($blog),
            'version' => get_option('hookpress_db_version'),
        ));
        foreach (array($event, $raced, $blog) as $id) { wp_delete_post($id, true); }
        """,
    )

    assert found["event"] == {
        "_hookpress_external_id": ["evt_v1"],
        "_hookpress_source": ["v1"],
        "_hookpress_status": ["old"],
    }
    assert found["raced"] == {"_hookpress_status": ["newer"]}
    assert found["blog"] == {"source": ["me"], "status": ["mine"]}
    assert found["version"] == DB_VERSION


# -- the token bucket's clock ----------------------------------------------------


def _load_time_zone(server: WordPressServer, zone: str) -> None:
    """Load one zone of the system's tzdata into MariaDB's time zone tables."""
    count = "SELECT COUNT(*) FROM mysql.time_zone_name WHERE Name = %s"
    loaded = server.run_php(
        f"global $wpdb; echo (int) $wpdb->get_var($wpdb->prepare('{count}', '{zone}'));"
    )
    if loaded == "1":
        return
    tool = shutil.which("mariadb-tzinfo-to-sql") or shutil.which("mysql_tzinfo_to_sql")
    assert tool, "mariadb-tzinfo-to-sql not found: install the Debian package mariadb-client"
    sql = subprocess.run(
        [tool, str(Path("/usr/share/zoneinfo") / zone), zone],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    ).stdout
    encoded = base64.b64encode(f"USE mysql;\n{sql}".encode()).decode()
    server.run_php(
        "global $wpdb;"
        f"if (!mysqli_multi_query($wpdb->dbh, base64_decode('{encoded}'))) {{"
        "  throw new Exception(mysqli_error($wpdb->dbh)); }"
        "do { if ($r = mysqli_store_result($wpdb->dbh)) { mysqli_free_result($r); } }"
        " while (mysqli_more_results($wpdb->dbh) && mysqli_next_result($wpdb->dbh));"
        "if (mysqli_errno($wpdb->dbh)) { throw new Exception(mysqli_error($wpdb->dbh)); }"
    )


def test_bucket_clock_ignores_the_session_time_zone_and_daylight_saving(
    wordpress_server: WordPressServer, plugin_options: SetOptions
) -> None:
    _load_time_zone(wordpress_server, "America/New_York")
    plugin_options(rate_per_minute=1, burst=1)

    # 2025-11-02 in New York: 01:00-02:00 happens twice. 05:50 UTC is 01:50
    # EDT; twenty minutes later, 06:10 UTC, the wall clock reads 01:10 EST.
    taken = _php_json(
        wordpress_server,
        r"""
        global $wpdb;
        $at = function ($zone, $epoch) use ($wpdb) {
            $wpdb->query($wpdb->prepare('SET time_zone = %s', $zone));
            $wpdb->query($wpdb->prepare('SET timestamp = %d', $epoch));
            return $wpdb->get_var('SELECT NOW()');
        };
        $steps = array();
        $at('America/New_York', 1762062600);
        Hookpress_Rate_Limiter::reset();
        foreach (array(
            array('America/New_York', 1762062600),  // 01:50 EDT: the full bucket's one token
            array('America/New_York', 1762063800),  // 01:10 EST, 20 minutes on: refilled
            array('+13:00', 1762063800),            // the same instant elsewhere: empty
            array('-12:00', 1762063800),            // and elsewhere again: still empty
            array('America/New_York', 1762063860),  // one minute on: one token
        ) as $step) {
            $local = $at($step[0], $step[1]);
            $steps[] = array($local, true === Hookpress_Rate_Limiter::take());
        }
        echo json_encode($steps);
        """,
    )

    assert [local for local, _ in taken] == [
        "2025-11-02 01:50:00",
        "2025-11-02 01:10:00",
        "2025-11-02 19:10:00",
        "2025-11-01 18:10:00",
        "2025-11-02 01:11:00",
    ]
    assert [allowed for _, allowed in taken] == [True, True, False, False, True]


# -- database failures -----------------------------------------------------------


@contextmanager
def _table_missing(server: WordPressServer, table: str) -> Iterator[None]:
    """The plugin's table is gone for the duration (renamed, then put back)."""
    server.run_php(f"global $wpdb; $wpdb->query('RENAME TABLE wp_{table} TO wp_{table}_away');")
    try:
        yield
    finally:
        server.run_php(f"global $wpdb; $wpdb->query('RENAME TABLE wp_{table}_away TO wp_{table}');")


def test_a_failed_bucket_update_is_503_with_retry_after(
    wordpress_server: WordPressServer,
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
) -> None:
    with _table_missing(wordpress_server, "hookpress_buckets"):
        response = ingest_client.post(wordpress.ingest_url, json=new_event())

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "hookpress_storage_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    # And the bucket works again once the table is back.
    assert ingest_client.post(wordpress.ingest_url, json=new_event()).status_code == 201


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressServer]:
    """A second site with WP_DEBUG and WP_DEBUG_DISPLAY on, as on a developer's machine."""
    with WordPressServer(
        tmp_path_factory.mktemp("wordpress-debug"), workers=2, debug_display=True
    ) as server:
        yield server


#: Words of a database error that must not reach a caller.
LEAKS = [
    "wp_hookpress",
    "wpdberror",
    "database error",
    "doesn't exist",
    "SQL",
    "SELECT",
    "INSERT",
    "UPDATE",
    "<div",
]


@pytest.mark.parametrize(
    ("table", "code"),
    [
        ("hookpress_buckets", "hookpress_storage_unavailable"),
        ("hookpress_idempotency", "hookpress_storage_unavailable"),
        ("hookpress_events", "hookpress_store_failed"),
    ],
)
def test_no_database_error_text_in_a_response_even_with_wp_debug_on(
    debug_server: WordPressServer, new_event: NewEvent, table: str, code: str
) -> None:
    site = debug_server.site
    with (
        _table_missing(debug_server, table),
        httpx.Client(auth=(site.ingest_user, site.app_password), timeout=60) as client,
    ):
        response = client.post(
            site.ingest_url, json=new_event(), headers={"Idempotency-Key": uuid.uuid4().hex}
        )

    assert response.status_code == 503, response.text
    body = response.json()  # nothing printed around the JSON
    assert body["code"] == code
    for leak in LEAKS:
        assert leak not in response.text, leak


def test_debug_detail_names_only_the_callers_own_address(debug_server: WordPressServer) -> None:
    site = debug_server.site
    transport = httpx.HTTPTransport(local_address=OUTSIDE_ADDRESS)
    with httpx.Client(
        auth=(site.ingest_user, site.app_password), transport=transport, timeout=60
    ) as client:
        response = client.post(site.ingest_url, json={})

    assert response.status_code == 403, response.text
    assert response.json()["data"] == {"status": 403, "client_address": OUTSIDE_ADDRESS}


# -- upgrades --------------------------------------------------------------------

#: Version 1's state: the role's capability was the role's own name, and an
#: administrator had granted that capability to editors by hand.
VERSION_1 = r"""
global $wpdb;
$key = $wpdb->prefix . 'user_roles';
$roles = get_option($key);
$roles['hookpress_ingest']['capabilities'] = array('hookpress_ingest' => true);
$roles['editor']['capabilities']['hookpress_ingest'] = true;
update_option($key, $roles);
update_option('hookpress_db_version', '1');
"""


def test_the_upgrade_never_stores_the_roles_without_the_ingest_capability(
    wordpress_server: WordPressServer,
) -> None:
    found = _php_json(
        wordpress_server,
        VERSION_1
        + r"""
        $writes = array();
        add_filter("pre_update_option_$key", function ($value) use (&$writes) {
            $writes[] = isset($value['hookpress_ingest'])
                ? $value['hookpress_ingest']['capabilities'] : null;
            return $value;
        });
        Hookpress_Installer::maybe_upgrade();
        $after = get_option($key);
        echo json_encode(array(
            'writes' => $writes,
            'role' => $after['hookpress_ingest']['capabilities'],
            'editor' => isset($after['editor']['capabilities']['hookpress_ingest']),
            'version' => get_option('hookpress_db_version'),
        ));
        """,
    )

    assert found["writes"], "the upgrade stored no roles"
    assert all(caps == {"hookpress_ingest_events": True} for caps in found["writes"]), found
    assert found["role"] == {"hookpress_ingest_events": True}
    assert found["editor"] is False
    assert found["version"] == DB_VERSION


def test_one_request_upgrades_while_others_wait_for_nothing(
    wordpress_server: WordPressServer,
) -> None:
    found = _php_json(
        wordpress_server,
        r"""
        global $wpdb;
        update_option('hookpress_db_version', '1');
        // Another request holds the lock: this one does not upgrade...
        $wpdb->insert($wpdb->options, array('option_name' => 'hookpress_upgrade_lock',
            'option_value' => (string) (time() + 300), 'autoload' => 'no'));
        Hookpress_Installer::maybe_upgrade();
        $held = get_option('hookpress_db_version');
        // ...and a lock whose request died (expired) is taken over.
        $wpdb->update($wpdb->options, array('option_value' => (string) (time() - 1)),
            array('option_name' => 'hookpress_upgrade_lock'));
        wp_cache_delete('hookpress_db_version', 'options');
        Hookpress_Installer::maybe_upgrade();
        echo json_encode(array(
            'while_held' => $held,
            'after' => get_option('hookpress_db_version'),
            'lock_left' => (int) $wpdb->get_var("SELECT COUNT(*) FROM {$wpdb->options}
                WHERE option_name = 'hookpress_upgrade_lock'"),
        ));
        """,
    )

    assert found == {"while_held": "1", "after": DB_VERSION, "lock_left": 0}


def test_deliveries_during_an_upgrade_are_never_refused(
    wordpress_server: WordPressServer,
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
) -> None:
    wordpress_server.run_php(VERSION_1)
    bodies = [new_event() for _ in range(24)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(
            pool.map(lambda b: ingest_client.post(wordpress.ingest_url, json=b), bodies)
        )

    assert [r.status_code for r in responses] == [201] * len(bodies), [
        (r.status_code, r.text) for r in responses if r.status_code != 201
    ]
    after = _php_json(
        wordpress_server,
        "echo json_encode(array(get_option('hookpress_db_version'),"
        " get_option(wp_roles()->role_key)['hookpress_ingest']['capabilities']));",
    )
    assert after == [DB_VERSION, {"hookpress_ingest_events": True}]
