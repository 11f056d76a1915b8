"""The rotate function against the real WordPress: a new password, proven, the old revoked."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpress import rotate
from hookpress.local.wordpress import WordPressServer, WordPressSite
from tests.conftest import FUNCTIONS

SECRET = "wordpress-app-password"


@pytest.fixture(scope="module")
def app() -> Any:
    import functions_framework

    return functions_framework.create_app(
        target="rotate", source=str(FUNCTIONS / "rotate" / "main.py")
    )


@pytest.fixture
def rotating_user(wordpress_server: WordPressServer, tmp_path: Path) -> tuple[str, Path]:
    """A user of its own with the ingest role (the session's ingest user stays untouched)."""
    login = f"rotate-{uuid.uuid4().hex[:8]}"
    password = wordpress_server.create_user(login, "hookpress_ingest")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({SECRET: [password], "hookpress-source-stripe": ["s"]}))
    return login, secrets


@pytest.fixture
def runtime(wordpress: WordPressSite, rotating_user: tuple[str, Path]) -> Any:
    login, secrets = rotating_user
    rt = rotate.build_runtime(
        {
            "HOOKPRESS_PROJECT": "hookpress-local",
            "HOOKPRESS_WP_BASE_URL": wordpress.rest_base,
            "HOOKPRESS_WP_USER": login,
            "HOOKPRESS_WP_APP_PASSWORD_SECRET": SECRET,
            "HOOKPRESS_PUSH_AUTH": "none",
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets),
        }
    )
    rotate.install(rt)
    yield rt
    rotate.install(None)


def notification(event_type: str, secret: str) -> dict[str, Any]:
    data = base64.b64encode(json.dumps({"name": f"projects/123/secrets/{secret}"}).encode())
    return {
        "message": {
            "attributes": {"eventType": event_type, "secretId": f"projects/123/secrets/{secret}"},
            "data": data.decode(),
            "messageId": "1",
        },
        "subscription": "projects/p/subscriptions/rotate",
    }


def ingest(wordpress: WordPressSite, user: str, password: str) -> int:
    body = {
        "source": "rotation",
        "external_id": f"rot-{uuid.uuid4().hex}",
        "status": "ok",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    resp = httpx.post(wordpress.ingest_url, json=body, auth=(user, password), timeout=30)
    return resp.status_code


def test_rotation_replaces_the_password_for_real(app, runtime, wordpress, rotating_user, capsys):
    login, secrets = rotating_user
    old = json.loads(secrets.read_text())[SECRET][0]
    assert ingest(wordpress, login, old) == 201

    resp = app.test_client().post("/", json=notification("SECRET_ROTATE", SECRET))
    assert resp.status_code == 204

    values = json.loads(secrets.read_text())[SECRET]
    assert len(values) == 1  # the old version is disabled
    new = values[0]
    assert new != old
    assert ingest(wordpress, login, new) == 201
    assert ingest(wordpress, login, old) == 401  # revoked in WordPress
    out = capsys.readouterr().out
    assert old not in out
    assert new not in out
    assert '"outcome": "rotated"' in out


def _mint(server: WordPressServer, login: str, name: str) -> str:
    """A further application password for the user, as an attacker or a failed rotation left it."""
    return server.run_php(
        f"$u = get_user_by('login', '{login}');"
        "echo WP_Application_Passwords::create_new_application_password("
        f"$u->ID, array('name' => '{name}'))[0];"
    )


def _passwords(server: WordPressServer, login: str) -> list[str]:
    found: list[str] = json.loads(
        server.run_php(
            f"$u = get_user_by('login', '{login}');"
            "echo json_encode(wp_list_pluck("
            "WP_Application_Passwords::get_user_application_passwords($u->ID), 'uuid'));"
        )
    )
    return found


def test_rotation_leaves_exactly_one_application_password(
    app, runtime, wordpress, wordpress_server, rotating_user
):
    login, secrets = rotating_user
    extra = [_mint(wordpress_server, login, f"left over {n}") for n in range(2)]
    assert len(_passwords(wordpress_server, login)) == 3

    resp = app.test_client().post("/", json=notification("SECRET_ROTATE", SECRET))
    assert resp.status_code == 204

    new = json.loads(secrets.read_text())[SECRET][0]
    remaining = _passwords(wordpress_server, login)
    assert len(remaining) == 1
    assert ingest(wordpress, login, new) == 201
    # Every other password is gone, not only the one that was replaced.
    assert [ingest(wordpress, login, password) for password in extra] == [401, 401]


def test_the_ingest_user_cannot_rotate_through_core(wordpress, wordpress_server, rotating_user):
    login, secrets = rotating_user
    password = json.loads(secrets.read_text())[SECRET][0]
    core = f"{wordpress.rest_base}/wp/v2/users/me/application-passwords"

    minted = httpx.post(core, json={"name": "mine"}, auth=(login, password), timeout=30)

    assert minted.status_code == 403, minted.text
    assert len(_passwords(wordpress_server, login)) == 1


def test_topic_configured_and_other_events_are_ignored(app, runtime, rotating_user):
    _, secrets = rotating_user
    before = secrets.read_text()
    for event in ("TOPIC_CONFIGURED", "SECRET_VERSION_ADD"):
        assert app.test_client().post("/", json=notification(event, SECRET)).status_code == 204
    assert secrets.read_text() == before


def test_a_provider_secret_gets_a_reminder_not_a_rotation(app, runtime, rotating_user, capsys):
    _, secrets = rotating_user
    before = secrets.read_text()
    resp = app.test_client().post(
        "/", json=notification("SECRET_ROTATE", "hookpress-source-stripe")
    )
    assert resp.status_code == 204
    assert secrets.read_text() == before
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    reminder = [x for x in lines if x.get("outcome") == "provider_rotation_due"]
    assert reminder
    assert reminder[0]["severity"] == "ERROR"


def test_a_failure_before_the_new_password_is_proven_revokes_nothing(
    app, runtime, wordpress, rotating_user
):
    login, secrets = rotating_user
    old = json.loads(secrets.read_text())[SECRET][0]
    # The stored password is wrong: WordPress refuses the first step.
    secrets.write_text(json.dumps({SECRET: ["wrong password"]}))
    resp = app.test_client().post("/", json=notification("SECRET_ROTATE", SECRET))
    assert resp.status_code == 503  # Pub/Sub retries
    assert ingest(wordpress, login, old) == 201  # the working password still works


def test_a_malformed_notification_is_400(app, runtime):
    assert app.test_client().post("/", data=b"nope").status_code == 400
    assert app.test_client().post("/", json={"message": {"attributes": {}}}).status_code == 400
