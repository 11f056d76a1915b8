"""Who may call the ingest route, from where, and how often; who may read events."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite

NewEvent = Callable[..., dict[str, Any]]
SetOptions = Callable[..., None]


@pytest.fixture(scope="module")
def subscriber_client(
    wordpress_server: WordPressServer, wordpress: WordPressSite
) -> Iterator[httpx.Client]:
    """A logged-in user without the ingest capability."""
    login = f"subscriber-{uuid.uuid4().hex[:8]}"
    password = wordpress_server.create_user(login, "subscriber")
    with httpx.Client(auth=(login, password), timeout=60) as client:
        yield client


@pytest.fixture
def other_peer_client(wordpress: WordPressSite) -> Iterator[httpx.Client]:
    """The ingest user, connecting from 127.0.0.2: a real peer outside the allowlist."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(
        auth=(wordpress.ingest_user, wordpress.app_password), transport=transport, timeout=60
    ) as client:
        yield client


def test_anonymous_is_401(wordpress: WordPressSite, new_event: NewEvent) -> None:
    response = httpx.post(wordpress.ingest_url, json=new_event(), timeout=60)

    assert response.status_code == 401, response.text


def test_wrong_application_password_is_401(wordpress: WordPressSite, new_event: NewEvent) -> None:
    response = httpx.post(
        wordpress.ingest_url,
        json=new_event(),
        auth=(wordpress.ingest_user, "not the password"),
        timeout=60,
    )

    assert response.status_code == 401, response.text


def test_user_without_the_capability_is_403(
    subscriber_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    response = subscriber_client.post(wordpress.ingest_url, json=new_event())

    assert response.status_code == 403, response.text


def test_administrator_cannot_ingest_either(
    admin_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    response = admin_client.post(wordpress.ingest_url, json=new_event())

    assert response.status_code == 403, response.text


def test_ingest_user_holds_only_the_ingest_capability(wordpress_server: WordPressServer) -> None:
    output = wordpress_server.run_php(
        "$u = get_user_by('login', 'hookpress-ingest');"
        "echo json_encode(array('roles' => array_values($u->roles),"
        " 'caps' => array_keys(array_filter($u->allcaps)),"
        " 'role_caps' => get_role('hookpress_ingest')->capabilities));"
    )
    found = json.loads(output)
    assert found["roles"] == ["hookpress_ingest"]
    # allcaps also lists the role name itself: that is why the capability is
    # named differently, so holding the role's name grants nothing.
    assert sorted(found["caps"]) == ["hookpress_ingest", "hookpress_ingest_events"]
    assert found["role_caps"] == {"hookpress_ingest_events": True}


def test_ingest_user_cannot_read_or_write_through_wp_v2(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    created = ingest_client.post(wordpress.ingest_url, json=new_event())
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    collection = f"{wordpress.rest_base}/wp/v2/ai-events"

    assert ingest_client.get(collection).status_code == 403
    assert ingest_client.get(f"{collection}/{post_id}").status_code == 403
    assert ingest_client.post(collection, json={"title": "forged"}).status_code == 403
    assert ingest_client.post(f"{collection}/{post_id}", json={"title": "x"}).status_code == 403
    assert ingest_client.delete(f"{collection}/{post_id}").status_code == 403


def test_events_are_read_only_through_wp_v2_even_for_administrators(
    ingest_client: httpx.Client,
    admin_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
) -> None:
    created = ingest_client.post(wordpress.ingest_url, json=new_event())
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    item = f"{wordpress.rest_base}/wp/v2/ai-events/{post_id}"

    assert admin_client.get(item).status_code == 200
    refused = [
        admin_client.post(f"{wordpress.rest_base}/wp/v2/ai-events", json={"title": "new"}),
        admin_client.post(item, json={"title": "edited", "meta": {"status": "forged"}}),
        admin_client.post(f"{item}/autosaves", json={"title": "autosaved"}),
        admin_client.delete(item, params={"force": "true"}),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403, 403]
    after = admin_client.get(item).json()
    assert after["title"]["rendered"].startswith("e2e: ")
    assert after["meta"]["status"] == "succeeded"


def test_anonymous_cannot_read_events(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    created = ingest_client.post(wordpress.ingest_url, json=new_event())
    assert created.status_code == 201, created.text

    listing = httpx.get(f"{wordpress.rest_base}/wp/v2/ai-events", timeout=60)
    item = httpx.get(f"{wordpress.rest_base}/wp/v2/ai-events/{created.json()['id']}", timeout=60)

    assert listing.status_code == 401, listing.text
    assert item.status_code == 401, item.text


def test_peer_outside_the_allowlist_is_403(
    other_peer_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    response = other_peer_client.post(wordpress.ingest_url, json=new_event())

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "hookpress_address_forbidden"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    other_peer_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    # 127.0.0.1 is allowed, but 127.0.0.2 is no trusted proxy: the header is not read.
    response = other_peer_client.post(
        wordpress.ingest_url, json=new_event(), headers={"X-Forwarded-For": "127.0.0.1"}
    )

    assert response.status_code == 403, response.text


def test_forwarded_for_is_honoured_only_from_a_trusted_proxy(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    plugin_options: SetOptions,
) -> None:
    plugin_options(allowlist=["198.51.100.0/24"], trusted_proxies=["127.0.0.1"])

    def send(forwarded: str | None) -> int:
        headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
        response = ingest_client.post(wordpress.ingest_url, json=new_event(), headers=headers)
        return response.status_code

    # The proxy itself is not an allowed client.
    assert send(None) == 403
    assert send("198.51.100.7") == 201
    # Whatever the client typed left of the proxy's hop is not believed...
    assert send("203.0.113.9, 198.51.100.7") == 201
    # ...and the rightmost untrusted hop decides.
    assert send("198.51.100.7, 203.0.113.9") == 403
    assert send("198.51.100.7, 127.0.0.1") == 201
    assert send("not-an-address") == 403


def test_empty_allowlist_denies_everyone(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    plugin_options: SetOptions,
) -> None:
    plugin_options(allowlist=[])

    response = ingest_client.post(wordpress.ingest_url, json=new_event())

    assert response.status_code == 403, response.text


def test_address_matching_rules(wordpress_server: WordPressServer) -> None:
    cases = [
        # (address, ranges, trusted proxies, forwarded-for, allowed)
        ("10.1.2.3", ["10.0.0.0/8"], [], None, True),
        ("11.1.2.3", ["10.0.0.0/8"], [], None, False),
        ("10.0.0.10", ["10.0.0.1"], [], None, False),
        ("::ffff:10.1.2.3", ["10.0.0.0/8"], [], None, True),
        ("2001:db8::1", ["2001:db8::/32"], [], None, True),
        ("2001:db9::1", ["2001:db8::/32"], [], None, False),
        ("0:0:0:0:0:0:0:1", ["::1"], [], None, True),
        ("fe80::1%eth0", ["fe80::/10"], [], None, True),
        ("10.1.2.3", ["10.0.0.0/8"], [], None, True),
        ("10.1.2.3", [], [], None, False),
        ("10.1.2.3", ["not-a-range", "10.0.0.0/33"], [], None, False),
        # Proxies: the forwarded address counts only behind a trusted proxy.
        ("192.0.2.1", ["198.51.100.7"], ["192.0.2.0/24"], "198.51.100.7", True),
        ("192.0.2.1", ["198.51.100.7"], [], "198.51.100.7", False),
        ("192.0.2.1", ["2001:db8::7"], ["192.0.2.1"], "[2001:db8::7]:1234", True),
        ("192.0.2.1", ["198.51.100.7"], ["192.0.2.1"], "198.51.100.7:5555", True),
        ("192.0.2.1", ["198.51.100.7"], ["192.0.2.1"], "198.51.100.7, garbage", False),
    ]
    code = (
        f"$cases = json_decode(<<<'JSON'\n{json.dumps(cases)}\nJSON, true);"
        "$out = array();"
        "foreach ($cases as $c) {"
        "  $client = Hookpress_Ip::client_address($c[0], $c[3], $c[2]);"
        "  $out[] = null !== $client && Hookpress_Ip::in_ranges($client, $c[1]);"
        "}"
        "echo json_encode($out);"
    )
    results = json.loads(wordpress_server.run_php(code))
    assert results == [case[4] for case in cases]


def test_over_the_rate_is_429_with_retry_after(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    plugin_options: SetOptions,
) -> None:
    plugin_options(rate_per_minute=1, burst=2)

    statuses = [ingest_client.post(wordpress.ingest_url, json=new_event()) for _ in range(3)]

    assert [r.status_code for r in statuses] == [201, 201, 429], [r.text for r in statuses]
    limited = statuses[2]
    assert limited.json()["code"] == "hookpress_rate_limited"
    retry_after = limited.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    # One token a minute, just spent: most of a minute to wait.
    assert 1 <= int(retry_after) <= 60


def test_fifty_concurrent_requests_against_a_limit_of_ten(
    ingest_client: httpx.Client,
    wordpress: WordPressSite,
    new_event: NewEvent,
    plugin_options: SetOptions,
) -> None:
    plugin_options(rate_per_minute=1, burst=10)
    bodies = [new_event() for _ in range(50)]
    barrier = threading.Barrier(50)

    def send(body: dict[str, Any]) -> httpx.Response:
        barrier.wait()
        return ingest_client.post(wordpress.ingest_url, json=body)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, bodies))

    passed = [r for r in responses if 200 <= r.status_code < 300]
    limited = [r for r in responses if r.status_code == 429]
    assert 1 <= len(passed) <= 10, [r.status_code for r in responses]
    assert len(passed) + len(limited) == 50, [(r.status_code, r.text) for r in responses]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)


def test_events_are_not_on_the_public_site(
    ingest_client: httpx.Client, wordpress: WordPressSite, new_event: NewEvent
) -> None:
    secret = f"secret-summary-{uuid.uuid4().hex}"
    body = new_event(summary=secret)
    created = ingest_client.post(wordpress.ingest_url, json=body)
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]

    paths = [
        f"/?p={post_id}",
        f"/?post_type=ai_event&p={post_id}",
        "/?post_type=ai_event",
        "/feed/?post_type=ai_event",
        f"/?s={secret[:20]}",
        f"/wp-json/wp/v2/search?search={secret[:20]}",
        "/wp-sitemap.xml",
    ]
    with httpx.Client(base_url=wordpress.url, timeout=60, follow_redirects=True) as anonymous:
        for path in paths:
            response = anonymous.get(path)
            assert secret not in response.text, path
            assert body["external_id"] not in response.text, path
