"""wp-admin in headless Chromium: the settings page and the ai_event list.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

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
    """A page logged in to wp-admin as the administrator."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
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
