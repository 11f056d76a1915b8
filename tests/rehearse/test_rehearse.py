"""The deployed configuration, run here: every promise of issue 9's rehearsal, one test each.

The session fixture (``conftest.py``) starts :class:`rehearsal.Rehearsal`:
the program's own archives, venvs of their own requirements, the program's
environment, push authentication on, wired as the program wires it. Tests run
in file order; the dead-letter test, which opens deliver's breaker, is last.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import firestore, pubsub_v1
from rehearsal import PROJECT, SOURCES, SWAPPED, Rehearsal
from venvs import clean_env

from hookpress.ops.sending import example_payload, sign_request
from tests.e2e.cli_harness import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db(rehearsal: Rehearsal) -> firestore.Client:
    return firestore.Client(project=PROJECT)


@pytest.fixture(scope="module")
def wp_admin(rehearsal: Rehearsal) -> httpx.Client:
    assert rehearsal.wordpress is not None
    site = rehearsal.wordpress.site
    return httpx.Client(
        base_url=site.rest_base, auth=(site.admin_user, site.admin_app_password), timeout=30
    )


def record(db: firestore.Client, key: str) -> dict[str, Any]:
    return db.collection("events").document(key).get().to_dict() or {}


def send(rehearsal: Rehearsal, source: str, nonce: str | None = None) -> tuple[httpx.Response, Any]:
    scheme = rehearsal.outputs["sources"][source]["scheme"]
    body = example_payload(scheme, time.time(), nonce or secrets.token_hex(8))
    # A URL-signing provider (Twilio) signs the public URL the program configured for the
    # source, not the local address the rehearsal posts to; the deployed ingress checks that.
    configured = json.loads(rehearsal.functions["ingress"].env["HOOKPRESS_SOURCES"])[source]
    request = sign_request(
        source=source, scheme=scheme, secret=rehearsal.source_secrets[source][0], body=body,
        now=time.time(), url=f"{rehearsal.ingress_url()}/{source}",
        signed_url=configured.get("url"),
    )  # fmt: skip
    response = httpx.post(request.url, content=request.body, headers=request.headers, timeout=30)
    return response, request


def posts_for(wp_admin: httpx.Client, external_id: str) -> list[dict[str, Any]]:
    response = wp_admin.get(
        "/wp/v2/ai-events", params={"external_id": external_id, "status": "any", "per_page": 100}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


# -- what runs is what deploys ---------------------------------------------------------------


def test_the_program_is_what_the_engine_accepts(rehearsal: Rehearsal) -> None:
    engine = rehearsal.program.engine
    assert len(engine.urns) == len(set(engine.urns)) > 100
    assert not engine.unregistered_references
    assert not engine.created_in_apply


def test_each_function_runs_its_uploaded_archive_in_a_venv_of_its_own_requirements(
    rehearsal: Rehearsal,
) -> None:
    assert sorted(rehearsal.functions) == ["deliver", "ingress", "reconcile", "rotate"]
    for short, deployed in rehearsal.functions.items():
        uploaded = deployed.resource.get("buildConfig.source.storageSource.object")
        assert deployed.archive_name == uploaded, short
        probe = subprocess.run(
            [str(deployed.venv / "bin" / "python"), "-c",
             "import importlib.util as u, main, hookpress; print(hookpress.__file__); "
             "print([m for m in ('rich', 'pulumi', 'pytest') if u.find_spec(m)])"],
            cwd=deployed.directory, env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        core, extras = probe.stdout.split("\n")[:2]
        # The core comes from the archive; nothing of the developer's environment is there.
        assert Path(core).resolve().parent == (deployed.directory / "hookpress").resolve()
        assert extras == "[]", (short, extras)


def _process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_each_function_has_exactly_the_programs_environment_but_the_endpoints(
    rehearsal: Rehearsal,
) -> None:
    for short, deployed in rehearsal.functions.items():
        program, given = deployed.program_env, deployed.env
        changed = {k for k in set(program) | set(given) if program.get(k) != given.get(k)}
        assert changed <= SWAPPED, (short, changed - SWAPPED)
        assert set(program) <= set(given), short
        assert deployed.process.pid is not None
        seen = _process_env(deployed.process.pid)
        # The running process sees that, plus PATH/HOME (and what Python/gunicorn add).
        assert {k: seen.get(k) for k in given} == given, short
        leaked = {k for k in seen if k.startswith(("HOOKPRESS_", "GOOGLE_", "PULUMI"))} - set(given)
        assert leaked == set(), (short, leaked)


def test_push_authentication_is_on_for_every_private_function(rehearsal: Rehearsal) -> None:
    """Straight to the function, no token: 401. Through the front, with the token: accepted."""
    for short in ("deliver", "reconcile", "rotate"):
        deployed = rehearsal.functions[short]
        assert deployed.env["HOOKPRESS_PUSH_AUTH"] == "oidc"
        response = httpx.post(f"{deployed.process.url}/", content=b"{}", timeout=30)
        assert response.status_code == 401, (short, response.status_code)
        wrong = rehearsal.signer.token(
            "https://somewhere-else.run.app", deployed.env["HOOKPRESS_PUSH_SERVICE_ACCOUNT"]
        )
        response = httpx.post(
            f"{deployed.process.url}/",
            content=b"{}",
            headers={"Authorization": f"Bearer {wrong}"},
            timeout=30,
        )
        assert response.status_code == 401, (short, "wrong audience")
    assert rehearsal.front is not None
    garbage = httpx.post(rehearsal.front.endpoint("events-deliver"), content=b"{}", timeout=30)
    assert garbage.status_code == 400  # authenticated, then the envelope is refused


def test_each_caller_signs_for_the_audience_its_function_checks(rehearsal: Rehearsal) -> None:
    assert rehearsal.front is not None
    for name, route in rehearsal.front.routes.items():
        deployed = next(d for d in rehearsal.functions.values() if d.process.url == route.target)
        assert route.audience == deployed.env["HOOKPRESS_PUSH_AUDIENCE"], name
        assert route.email == deployed.env["HOOKPRESS_PUSH_SERVICE_ACCOUNT"], name
        assert route.audience.endswith(".run.app"), name
    assert set(rehearsal.front.routes) == {
        "events-deliver", "events-dead-deliver", "hookpress-secret-rotation-rotate",
        "job-hookpress-reconcile",
    }  # fmt: skip


# -- the pipeline ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_signed_event_of_every_scheme_arrives_once_in_wordpress(
    rehearsal: Rehearsal, db: firestore.Client, wp_admin: httpx.Client, source: str
) -> None:
    response, request = send(rehearsal, source)
    assert response.status_code == 202, response.text
    key = response.json()["event_id"]
    assert key == request.event_key
    done = wait_for(lambda: record(db, key).get("status") == "delivered" and record(db, key),
                    f"{source} delivered")  # fmt: skip
    post = wp_admin.get(f"/wp/v2/ai-events/{done['wp_post_id']}")
    assert post.status_code == 200, post.text
    external_id = post.json()["meta"]["external_id"]
    assert [p["id"] for p in posts_for(wp_admin, external_id)] == [done["wp_post_id"]]
    # The same request again: a duplicate, still one post.
    again = httpx.post(request.url, content=request.body, headers=request.headers, timeout=30)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    time.sleep(1.0)
    assert len(posts_for(wp_admin, external_id)) == 1


def test_the_scheduler_job_runs_reconcile_with_its_token(
    rehearsal: Rehearsal, db: firestore.Client
) -> None:
    response = rehearsal.run_job()
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"stuck", "republished", "stale", "stale_sample"}
    heartbeat = db.collection("control").document("reconcile").get().to_dict()
    assert heartbeat is not None
    assert "last_run_at" in heartbeat


def _wp_secret(rehearsal: Rehearsal) -> list[str]:
    data = json.loads(rehearsal.secrets_file.read_text())
    values: list[str] = data[rehearsal.outputs["secrets"]["wordpress"]]
    return values


def test_a_rotation_notification_rotates_the_application_password(
    rehearsal: Rehearsal, db: firestore.Client, wp_admin: httpx.Client
) -> None:
    assert rehearsal.front is not None
    assert rehearsal.wordpress is not None
    before = _wp_secret(rehearsal)[0]
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(PROJECT, rehearsal.outputs["topics"]["secretRotation"])
    secret = f"projects/{PROJECT}/secrets/{rehearsal.outputs['secrets']['wordpress']}"
    calls_before = len(rehearsal.front.calls)
    # Secret Manager also announces added versions; the subscription's filter drops them.
    publisher.publish(topic, b"{}", eventType="SECRET_VERSION_ADD", secretId=secret).result()
    publisher.publish(topic, b"{}", eventType="SECRET_ROTATE", secretId=secret).result()
    after = wait_for(lambda: (v := _wp_secret(rehearsal)[0]) != before and v, "a new password")
    # The emulator keeps the program's filter on the subscription but does not apply it
    # (both notifications are pushed); rotate itself acts on SECRET_ROTATE only.
    subscription = pubsub_v1.SubscriberClient().get_subscription(
        request={
            "subscription": f"projects/{PROJECT}/subscriptions/hookpress-secret-rotation-rotate"
        }
    )
    assert subscription.filter == 'attributes.eventType = "SECRET_ROTATE"'
    wait_for(
        lambda: (
            len([c for c in rehearsal.front.calls[calls_before:] if c[0].endswith("-rotate")]) >= 2
        ),
        "both notifications pushed",
    )
    rotate_calls = [c for c in rehearsal.front.calls[calls_before:] if c[0].endswith("-rotate")]
    assert [status for _, _, status in rotate_calls] == [204, 204]
    answers = [
        json.loads(line).get("message")
        for line in (rehearsal.workdir / "logs" / "rotate.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert answers.count("rotate rotated") == 1, answers
    assert answers.count("rotate ignored") == 1, answers
    site = rehearsal.wordpress.site
    ingest = f"{site.rest_base}/ai-guy/v1/ingest"
    old = httpx.post(ingest, json={}, auth=(site.ingest_user, before), timeout=30)
    new = httpx.post(ingest, json={}, auth=(site.ingest_user, after), timeout=30)
    assert old.status_code == 401, old.text
    assert new.status_code not in {401, 403}, new.text
    # deliver picks the new password up: its cached one is refused (401, retried) and it
    # re-reads the secret, at most every HOOKPRESS_SECRET_MIN_REFRESH_S (30 s, the program
    # sets no other). In the cloud the retry backoff (10 s and more) spans that; locally
    # the emulator redelivers at once, with no retry policy (see rehearsal.py), so the
    # event is sent once 30 s have passed since deliver last read the secret.
    time.sleep(31)
    response, _ = send(rehearsal, "stripe")
    key = response.json()["event_id"]
    wait_for(lambda: record(db, key).get("status") == "delivered", "delivery after rotation")


# -- hookpress smoke against the rehearsal ---------------------------------------------------


def smoke(local_json: Path, *args: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "hookpress.cli", "smoke", "--local", str(local_json), *args],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def test_smoke_passes_against_the_rehearsal(rehearsal: Rehearsal, tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    local.write_text(json.dumps(rehearsal.local_json(every_s=2.0)))
    rehearsal.start_scheduler(2.0)
    try:
        code, out, err = smoke(local)
    finally:
        rehearsal.stop_scheduler()
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["ingress", "delivered", "dead", "reconcile"]
    assert all(line.startswith("✓") for line in lines), out
    assert re.search(r"delivered in \d+ s \(WordPress post \d+\)", out), out


def test_smoke_fails_when_the_reconcile_job_stopped(
    rehearsal: Rehearsal, db: firestore.Client, tmp_path: Path
) -> None:
    """The job runs every 5 minutes but last ran 20 minutes ago: exit 1, the rest passes."""
    local = tmp_path / "local.json"
    local.write_text(json.dumps(rehearsal.local_json(every_s=300.0)))
    heartbeat = db.collection("control").document("reconcile")
    heartbeat.set({"last_run_at": datetime.now(UTC) - timedelta(minutes=20)})
    try:
        code, out, err = smoke(local, "--json")
    finally:
        rehearsal.run_job()
    assert code == 1, out + err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["delivered"]["ok"]
    assert checks["dead letters"]["ok"]
    assert not checks["reconcile"]["ok"]
    assert "every 300 s" in checks["reconcile"]["detail"]


def test_smoke_says_unavailable_when_a_backend_is_down(
    rehearsal: Rehearsal, tmp_path: Path
) -> None:
    description = rehearsal.local_json(every_s=2.0)
    description["ingress_url"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    local = tmp_path / "local.json"
    local.write_text(json.dumps(description))
    code, out, err = smoke(local, "--json", "--timeout", "5")
    assert code == 5, out + err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["ingress"]["unavailable"]
    assert checks["delivered"]["unavailable"]
    assert checks["dead letters"]["ok"]
    assert checks["reconcile"]["ok"]


# -- last: a dead letter (opens deliver's breaker) -------------------------------------------


def test_a_dead_letter_is_marked_dead(
    rehearsal: Rehearsal, db: firestore.Client, tmp_path: Path
) -> None:
    assert rehearsal.proxy is not None
    assert rehearsal.front is not None
    rehearsal.proxy.set(always_status=503)
    try:
        response, _ = send(rehearsal, "hmac-timestamp")
        key = response.json()["event_id"]
        wait_for(lambda: record(db, key).get("status") == "dead", "the record marked dead", 180)
        # The front logs a call once deliver's answer is back, a moment after deliver
        # wrote "dead": wait for the log line too rather than race it.
        front = rehearsal.front
        wait_for(
            lambda: any(c[0] == "events-dead-deliver" for c in front.calls),
            "the dead-letter push through the front",
            30,
        )
        dead_calls = [c for c in front.calls if c[0] == "events-dead-deliver"]
        assert dead_calls[-1][1] == "/dead"
        assert dead_calls[-1][2] == 204
        # smoke sees the new dead letter: exit 1.
        local = tmp_path / "local.json"
        local.write_text(json.dumps(rehearsal.local_json(every_s=2.0)))
        rehearsal.run_job()
        code, out, err = smoke(local, "--json", "--timeout", "10")
        assert code == 1, out + err
        checks = {c["name"]: c for c in json.loads(out)["checks"]}
        assert not checks["delivered"]["ok"]
        assert not checks["delivered"]["unavailable"]
        # ... and said what it was waiting for while it waited.
        code, out, err = smoke(local, "--timeout", "6")
        assert code == 1
        assert "waiting for delivery: published" in err, err
        assert re.search(r"^✗ delivered\s+(dead: attempts_exhausted|still published)", out, re.M), (
            out
        )
    finally:
        rehearsal.proxy.clear()
