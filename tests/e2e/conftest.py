"""Fixtures for the end-to-end tests: a real WordPress with the hookpress plugin.

One site is started per test session (MariaDB + ``php -S`` from Debian's
packages, see ``hookpress.local.wordpress``) and stopped at the end. Tests that
change plugin options do it through the ``plugin_options`` fixture, which puts
the defaults back afterwards, so the order of tests does not matter.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite

#: Figures measured by tests (name -> value), printed at the end of the run.
_FIGURES: dict[str, str] = {}

#: An address outside the plugin's default allowlist (127.0.0.1, ::1). Every
#: loopback address reaches the server bound to 127.0.0.1, and PHP reports it
#: as REMOTE_ADDR.
OUTSIDE_ADDRESS = "127.0.0.2"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the tests recorded."""
    if _FIGURES:
        terminalreporter.section("hookpress figures")
        for name, value in _FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def record_figure() -> Callable[[str, object], None]:
    """Record a measured figure; the run prints every figure at its end."""

    def record(name: str, value: object) -> None:
        _FIGURES[name] = str(value)

    return record


@pytest.fixture(scope="session")
def wordpress_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressServer]:
    """A running WordPress for the whole session.

    HOOKPRESS_WP_DEBUG=1 starts it with WP_DEBUG on (notices logged under the
    work directory's logs/), to investigate a failure.
    """
    debug = os.environ.get("HOOKPRESS_WP_DEBUG") == "1"
    with WordPressServer(tmp_path_factory.mktemp("wordpress"), debug=debug) as server:
        yield server


@pytest.fixture(scope="session")
def wordpress(wordpress_server: WordPressServer) -> WordPressSite:
    """How to reach the session's WordPress."""
    return wordpress_server.site


@pytest.fixture
def plugin_options(wordpress_server: WordPressServer) -> Iterator[Callable[..., None]]:
    """Set plugin options for one test; the defaults come back afterwards."""
    changed = False

    def set_options(**options: Any) -> None:
        nonlocal changed
        changed = True
        wordpress_server.set_options(**options)

    yield set_options
    if changed:
        wordpress_server.reset_options()


@pytest.fixture(scope="session")
def ingest_client(wordpress: WordPressSite) -> Iterator[httpx.Client]:
    """Authenticated as the ingest user (application password)."""
    with httpx.Client(
        auth=(wordpress.ingest_user, wordpress.app_password),
        timeout=60,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=64),
    ) as client:
        yield client


@pytest.fixture(scope="session")
def outside_ingest_client(wordpress: WordPressSite) -> Iterator[httpx.Client]:
    """The ingest user's application password, from OUTSIDE_ADDRESS."""
    with httpx.Client(
        auth=(wordpress.ingest_user, wordpress.app_password),
        transport=httpx.HTTPTransport(local_address=OUTSIDE_ADDRESS),
        timeout=60,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=16),
    ) as client:
        yield client


@pytest.fixture(scope="session")
def admin_client(wordpress: WordPressSite) -> Iterator[httpx.Client]:
    """Authenticated as the administrator (application password)."""
    with httpx.Client(
        auth=(wordpress.admin_user, wordpress.admin_app_password),
        timeout=60,
        follow_redirects=False,
    ) as client:
        yield client


def _new_event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "e2e",
        "external_id": f"evt_{uuid.uuid4().hex}",
        "status": "succeeded",
        "summary": "A test event.",
        "metadata": {"model": "test", "tokens": 12},
        "occurred_at": "2026-01-02T03:04:05Z",
    }
    body.update(overrides)
    return body


@pytest.fixture
def new_event() -> Callable[..., dict[str, Any]]:
    """Builds a valid ingest body with a fresh external_id; keywords override fields."""
    return _new_event


@pytest.fixture
def find_events(
    admin_client: httpx.Client, wordpress: WordPressSite
) -> Callable[[str], list[dict[str, Any]]]:
    """Every ai_event with an external_id, whatever its status, as the admin reads them."""

    def find(external_id: str) -> list[dict[str, Any]]:
        response = admin_client.get(
            f"{wordpress.rest_base}/wp/v2/ai-events",
            params={"external_id": external_id, "status": "any", "per_page": 100},
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events

    return find
