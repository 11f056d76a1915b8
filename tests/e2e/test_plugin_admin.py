"""wp-admin in headless Chromium: the settings page and the ai_event list.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from hookpress.local.wordpress import WordPressServer, WordPressSite

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def admin_page(browser: Browser, wordpress: WordPressSite) -> Iterator[Page]:
    """A page logged in to wp-admin as the administrator.

    Nothing may leave the machine: a request to any other host is refused and
    recorded, and the test fails if wp-admin made one. (Such a request can
    hang, and a page's load event waits for its images: a gravatar in the
    admin bar once held a navigation past its timeout.)
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def refuse(route: Route) -> None:
        elsewhere.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(f"{wordpress.url}/"), refuse)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{wordpress.url}/wp-login.php")
    page.fill("#user_login", wordpress.admin_user)
    page.fill("#user_pass", wordpress.admin_password)
    page.click("#wp-submit")
    page.wait_for_url("**/wp-admin/**")
    try:
        yield page
    finally:
        context.close()
    assert elsewhere == [], f"wp-admin reached off the machine: {elsewhere}"


def test_settings_page_shows_and_saves_the_options(
    admin_page: Page, wordpress: WordPressSite, wordpress_server: WordPressServer
) -> None:
    page = admin_page
    page.goto(f"{wordpress.url}/wp-admin/options-general.php?page=hookpress")

    assert page.locator("h1").inner_text() == "Hookpress"
    allowlist = page.locator("textarea#hookpress_allowlist")
    assert allowlist.input_value().split() == ["127.0.0.1", "::1"]
    assert page.locator("label[for=hookpress_allowlist]").inner_text() == "IP allowlist"
    assert page.locator("textarea#hookpress_trusted_proxies").input_value() == ""
    assert page.locator("label[for=hookpress_trusted_proxies]").inner_text() == "Trusted proxies"
    assert page.locator("input#hookpress_rate_per_minute").input_value() == "60000"
    assert page.locator("input#hookpress_burst").input_value() == "10000"
    assert "An empty allowlist denies every request." in page.content()
    assert page.locator("input[name=_wpnonce]").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wp-admin-hookpress-settings.png"), full_page=True)

    # Saving goes through options.php with the nonce and the plugin's sanitizers.
    try:
        allowlist.fill("127.0.0.1\n::1\n10.0.0.0/8\nnot-an-ip")
        page.fill("input#hookpress_rate_per_minute", "1234")
        page.click("#submit")
        page.wait_for_url("**/options-general.php?page=hookpress&settings-updated=true")
        # WordPress shows the sanitizer's error instead of "Settings saved.".
        notices = " ".join(page.locator(".notice").all_inner_texts())
        assert "not-an-ip" in notices, notices
        assert page.locator("textarea#hookpress_allowlist").input_value().split() == [
            "127.0.0.1",
            "::1",
            "10.0.0.0/8",
        ]
        assert page.locator("input#hookpress_rate_per_minute").input_value() == "1234"
    finally:
        wordpress_server.reset_options()


def test_event_list_shows_the_event_columns(
    admin_page: Page,
    wordpress: WordPressSite,
    ingest_client: httpx.Client,
    new_event: Callable[..., dict[str, Any]],
) -> None:
    body = new_event(source="replicate", status="succeeded")
    created = ingest_client.post(wordpress.ingest_url, json=body)
    assert created.status_code == 201, created.text

    page = admin_page
    page.goto(f"{wordpress.url}/wp-admin/edit.php?post_type=ai_event")

    headers = [
        text.strip() for text in page.locator("table.wp-list-table thead th").all_inner_texts()
    ]
    for column in ("External ID", "Source", "Status", "Received"):
        assert column in headers, headers
    row = page.locator(f"#post-{created.json()['id']}")
    assert body["external_id"] in row.locator("td.column-hookpress_external_id").inner_text()
    assert row.locator("td.column-hookpress_source").inner_text().strip() == "replicate"
    assert row.locator("td.column-hookpress_status").inner_text().strip() == "succeeded"
    assert row.locator("td.column-hookpress_received").inner_text().strip() != ""
    # Read-only: no "Add New", no edit link on the row.
    assert page.locator("a.page-title-action").count() == 0
    assert row.locator("a.row-title").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wp-admin-ai-event-list.png"), full_page=True)


def test_events_screen_sorts_filters_searches_shows_and_bulk_deletes(
    admin_page: Page,
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    ingest_client: httpx.Client,
    new_event: Callable[..., dict[str, Any]],
) -> None:
    source = f"screen-{uuid.uuid4().hex[:10]}"
    sent = [
        new_event(
            source=source,
            external_id=f"scr-{n}",
            status=status,
            occurred_at=at,
            metadata={"n": n, "nested": {"ok": True}},
        )
        for n, (status, at) in enumerate(
            [
                ("failed", "2026-01-02T00:00:00Z"),
                ("succeeded", "2026-01-03T00:00:00Z"),
                ("failed", "2026-01-01T00:00:00Z"),
            ]
        )
    ]
    created = [ingest_client.post(wordpress.ingest_url, json=r).json() for r in sent]
    page = admin_page
    screen = f"{wordpress.url}/wp-admin/admin.php?page=hookpress-events"

    def shown() -> list[str]:
        return [
            t.strip()
            for t in page.locator(
                "table.wp-list-table tbody td.column-external_id a.row-title"
            ).all_inner_texts()
        ]

    # Filter by source through the menu: newest occurred_at first.
    page.goto(screen)
    assert page.locator("h1").first.inner_text().strip() == "AI events"
    page.select_option("#filter-by-source", source)
    page.click("#hookpress-filter-submit")
    page.wait_for_url(f"**source={source}**")
    assert shown() == ["scr-1", "scr-0", "scr-2"]
    headers = [t.strip() for t in page.locator("table.wp-list-table thead th").all_inner_texts()]
    for column in ("External ID", "Source", "Status", "Occurred", "Received", "Post"):
        assert column in headers, headers

    # Sort by received_at (the column header), then the other way.
    page.click("table.wp-list-table thead th.column-received_at a")
    page.wait_for_url("**orderby=received_at**")
    assert shown() == ["scr-2", "scr-1", "scr-0"]
    page.click("table.wp-list-table thead th.column-received_at a")
    page.wait_for_url("**order=asc**")
    assert shown() == ["scr-0", "scr-1", "scr-2"]

    # Status filter, and search by external id.
    page.goto(f"{screen}&source={source}&status=failed")
    assert shown() == ["scr-0", "scr-2"]
    page.goto(f"{screen}&source={source}")
    page.fill("#hookpress-event-search-input", "scr-2")
    page.click("#search-submit")
    page.wait_for_url("**s=scr-2**")
    assert shown() == ["scr-2"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{screen}&source={source}")
    page.screenshot(path=str(ARTIFACTS / "wp-admin-events-screen.png"), full_page=True)

    # The row's page shows every field and the metadata.
    page.click("a.row-title >> text=scr-1")
    page.wait_for_url("**event=**")
    metadata = json.loads(page.locator("pre.hookpress-metadata").inner_text())
    assert metadata == sent[1]["metadata"]
    assert source in page.locator("table.hookpress-event").inner_text()
    page.screenshot(path=str(ARTIFACTS / "wp-admin-event-view.png"), full_page=True)

    # Bulk delete two: rows and posts go.
    page.goto(f"{screen}&source={source}")
    for event in created[:2]:
        page.check(f"#event-{event['event_id']}")
    page.select_option("#bulk-action-selector-top", "delete")
    page.click("#doaction")
    page.wait_for_url("**deleted=2**")
    assert "2 events deleted." in page.locator(".notice-success").inner_text()
    assert shown() == ["scr-2"]
    gone = ",".join(str(e["post_id"]) for e in created[:2])
    assert wordpress_server.sql(f"SELECT ID FROM wp_posts WHERE ID IN ({gone})") == []


def test_events_screen_is_for_users_who_can_read_events(
    browser: Browser, wordpress: WordPressSite, wordpress_server: WordPressServer
) -> None:
    login = f"editor-{uuid.uuid4().hex[:8]}"
    wordpress_server.create_user(login, "editor")
    phrase = uuid.uuid4().hex  # a throwaway login for this test's own user
    wordpress_server.run_php(
        f"wp_set_password({json.dumps(phrase)}, get_user_by('login', {json.dumps(login)})->ID);"
    )
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{wordpress.url}/wp-login.php")
        page.fill("#user_login", login)
        page.fill("#user_pass", phrase)
        page.click("#wp-submit")
        page.wait_for_url("**/wp-admin/**")
        response = page.goto(f"{wordpress.url}/wp-admin/admin.php?page=hookpress-events")
        assert response is not None
        assert response.status == 403
    finally:
        context.close()
