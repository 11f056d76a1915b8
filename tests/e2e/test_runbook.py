"""docs/runbook.md, run: every fenced command, in the situation its section is about.

The runbook is parsed into sections (``## …``) and their ```` ```sh ```` blocks.
Each section has a test here that first creates its situation on a real local
stack (WordPress failing through the fault proxy, events dead-lettered,
records lost, a secret being rotated, …), then runs the section's commands
exactly as written (bash, the installed ``hookpress``, the shell variables the
runbook names), and checks that they answered the situation. Every command
must exit 0. A static test makes sure no section with commands lacks a test,
so a command added to the runbook without a test fails the suite.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1

from hookpress.backends.gcs import RawStore
from hookpress.events import event_key, new_record, raw_object_name
from hookpress.local.stack import BUCKET, DEAD_TOPIC, LocalStack, StackOptions
from hookpress.local.wordpress import WordPressServer
from tests.e2e.cli_harness import (
    ROOT,
    Cli,
    clean_env,
    stack_fixtures,
    wait_for,
)

RUNBOOK = ROOT / "docs" / "runbook.md"
SOURCES = {"rb-stripe": "stripe", "rb-github": "github", "rb-hmac": "hmac-timestamp"}
PROJECT = "hookpress-runbook"


# -- the runbook, parsed --------------------------------------------------------------


def runbook_sections() -> dict[str, list[list[str]]]:
    """Section title → its fenced command blocks → their command lines."""
    sections: dict[str, list[list[str]]] = {}
    heading = ""
    block: list[str] | None = None
    for number, line in enumerate(RUNBOOK.read_text().splitlines(), 1):
        stripped = line.strip()
        if block is not None:
            if stripped.startswith("```"):
                sections.setdefault(heading, []).append(block)
                block = None
            elif stripped and not stripped.startswith("#"):
                block.append(stripped)
            continue
        if line.startswith("## "):
            heading = line[3:].strip()
        elif stripped.startswith("```"):
            # Only shell blocks: a block in any other language would be a command nobody runs.
            assert stripped == "```sh", f"runbook line {number}: a fence that is not ```sh"
            block = []
    assert block is None, "an unclosed fence in the runbook"
    return sections


@dataclass
class Ran:
    command: str
    stdout: str
    stderr: str


# -- the stack ------------------------------------------------------------------------


OPTIONS = StackOptions(
    project=PROJECT,
    sources=SOURCES,
    wp_read_timeout_s=3,
    breaker_threshold=1000,  # the breaker would only slow recovery down here
    extra_deliver_env={"HOOKPRESS_CONTROL_TTL_S": "0.5"},
    # A retired secret stops being accepted within a second, not five minutes.
    extra_ingress_env={"HOOKPRESS_SECRET_CACHE_TTL_S": "1"},
)
stack, local_file, cli, db, wordpress, no_faults = stack_fixtures("runbook", OPTIONS)


@pytest.fixture(autouse=True)
def control(db: firestore.Client) -> Iterator[Callable[..., None]]:
    """Set the pause switch directly (setup, not the command under test); every test
    starts and ends with deliveries running, so one failure does not cascade."""
    document = db.collection("control").document("delivery")

    def switch(*, paused: bool) -> None:
        document.set({"paused": paused})
        time.sleep(1)  # past the deliver function's control cache (0.5 s here)

    if (document.get().to_dict() or {}).get("paused"):
        switch(paused=False)
    yield switch
    if (document.get().to_dict() or {}).get("paused"):
        switch(paused=False)


@pytest.fixture
def section(local_file: Path, tmp_path: Path) -> Callable[..., list[Ran]]:
    """Run a section's commands (all blocks, or the ``blocks`` given) with the runbook's
    variables; every command must exit 0."""
    sections = runbook_sections()

    def run(title: str, *, blocks: slice | None = None, **variables: str) -> list[Ran]:
        chosen = sections[title][blocks] if blocks is not None else sections[title]
        env = clean_env(
            {
                "HOOKPRESS_LOCAL": str(local_file),
                "HOOKPRESS_CONTROL_TTL_S": "0.5",  # as the stack's deliver function has it
                **variables,
            }
        )
        ran = []
        for block in chosen:
            for command in block:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", command],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                assert done.returncode == 0, (
                    f"runbook '{title}': {command!r} exited {done.returncode}\n"
                    f"{done.stdout}\n{done.stderr}"
                )
                ran.append(Ran(command, done.stdout, done.stderr))
        return ran

    return run


def record(db: firestore.Client, key: str) -> dict[str, Any]:
    return db.collection("events").document(key).get().to_dict() or {}


def status_is(db: firestore.Client, key: str, *statuses: str) -> Callable[[], bool]:
    return lambda: record(db, key).get("status") in statuses


def send(cli: Cli, source: str, *extra: str) -> dict[str, Any]:
    sent: dict[str, Any] = cli.json("send", source, "--example", *extra)
    assert sent["http_status"] == 202, sent
    return sent


def accepted(cli: Cli, source: str, *extra: str) -> None:
    """Until the ingress accepts it: a secret added a moment ago is picked up at the next
    refresh (at most HOOKPRESS_SECRET_MIN_REFRESH_S after the last one, 1 s locally)."""
    wait_for(
        lambda: cli.run("send", source, "--example", *extra).returncode == 0,
        f"{source} {' '.join(extra)} accepted",
        timeout_s=20,
    )


def refused(cli: Cli, source: str, *extra: str) -> None:
    """Until the ingress refuses it (401, exit code 1): a retired secret leaves its cache."""
    wait_for(
        lambda: cli.run("send", source, "--example", *extra).returncode == 1,
        f"{source} {' '.join(extra)} refused",
        timeout_s=20,
    )


# -- which test covers which section --------------------------------------------------

SECTION_TESTS = {
    "Before you start": "test_before_you_start",
    "Dead letters": "test_dead_letters",
    "WordPress outage": "test_wordpress_outage",
    "Failed deliveries": "test_failed_deliveries",
    "Ingress answers 5xx": "test_ingress_answers_5xx",
    "Published events are not delivered": "test_published_events_are_not_delivered",
    "Pausing during maintenance": "test_pausing_during_maintenance",
    "Rotating a provider secret": "test_rotating_a_provider_secret",
    "Replaying a day from GCS": "test_replaying_a_day_from_gcs",
    "Finding an event by provider id": "test_finding_an_event_by_provider_id",
}


def test_every_section_with_commands_has_a_test():
    with_commands = {title for title, blocks in runbook_sections().items() if blocks}
    assert with_commands == set(SECTION_TESTS), (
        "a runbook section with commands needs a test here (and a test needs its section)"
    )
    for name in SECTION_TESTS.values():
        assert callable(globals().get(name)), name


def test_the_runbook_explains_every_alert_the_program_creates():
    source = (ROOT / "infra" / "observability.py").read_text()
    titles = re.findall(r'policy\(\s*"[a-z0-9-]+",\s*"([^"]+)"', source)
    assert len(titles) == 4, titles
    text = RUNBOOK.read_text()
    for title in titles:
        assert f"`{title}`" in text, f"the runbook does not explain the alert {title!r}"
    for pointer in re.findall(r"docs/runbook\.md, '([^']+)'", source):
        assert f"## {pointer}" in text, f"observability.py points to a missing section {pointer!r}"
    for module in ("reconcile", "rotate"):
        code = (ROOT / "functions" / "hookpress" / module / "__init__.py").read_text()
        for pointer in re.findall(r"docs/runbook\.md, '([^']+)'", code):
            assert f"## {pointer}" in text, f"{module} points to a missing section {pointer!r}"


# -- the sections ---------------------------------------------------------------------


def test_before_you_start(section):
    (ran,) = section("Before you start")
    assert "deliveries: running" in ran.stdout
    assert PROJECT in ran.stdout


def _dead_lettered(stack: LocalStack, db: firestore.Client, keys: list[str]) -> None:
    """Put events where Pub/Sub puts them after their last attempt.

    Pub/Sub's own dead-lettering (attempts exhausted, forwarded to events-dead,
    marked dead by the dead-letter push) is proven by test_pipeline.py; here the
    situation is built without waiting for five redeliveries, whose timing the
    emulator does not keep reliably (it sometimes stops redelivering nacked
    messages for minutes). The events were held, so no original message is left
    to race the replay; each record is put back to ``published``, as a message
    whose attempts ran out leaves it (a dead letter for a record already held or
    failed keeps that verdict: tests/integration/test_deliver.py).
    """
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(PROJECT, DEAD_TOPIC)
    for key in keys:
        db.collection("events").document(key).update({"status": "published"})
    for key in keys:
        data = json.dumps({"event_key": key}).encode()
        publisher.publish(topic, data, event_key=key, source="rb-hmac").result(timeout=30)
    for key in keys:
        wait_for(status_is(db, key, "dead"), f"{key} marked dead by the dead-letter push")


def test_dead_letters(stack, cli, db, wordpress, control, section):
    control(paused=True)
    sent = [send(cli, "rb-hmac") for _ in range(2)]
    keys = [s["event_id"] for s in sent]
    for key in keys:
        wait_for(status_is(db, key, "held"), f"{key} held")
    _dead_lettered(stack, db, keys)
    control(paused=False)  # the cause is fixed

    (listed,) = section("Dead letters", blocks=slice(0, 1))
    for key in keys:
        assert key in listed.stdout
    dry_run, replayed = section("Dead letters", blocks=slice(1, 2))
    assert "would_replay" in dry_run.stderr
    assert "replayed" in replayed.stderr
    for key, s in zip(keys, sent, strict=True):
        wait_for(status_is(db, key, "delivered"), f"{key} delivered after the replay")
        assert len(wordpress.find(s["provider_id"])) == 1

    (by_status,) = section("Dead letters", blocks=slice(2, 3))
    assert "nothing selected" in by_status.stderr, "no record is dead any more"
    assert cli.json("replay", "--dead-letters", "--dry-run")["counts"] == {}, "the queue is empty"


def test_wordpress_outage(stack, cli, db, wordpress, section):
    stack.proxy.set(always_status=503)
    first = send(cli, "rb-hmac")
    wait_for(lambda: record(db, first["event_id"]).get("attempts", 0) >= 1, "a failed attempt")

    status, listed = section("WordPress outage", blocks=slice(0, 1))
    assert "deliveries: running" in status.stdout
    # Retrying events show as published. On a loaded machine the local subscription's
    # five quick attempts can all be spent before the listing runs: then Pub/Sub has
    # dead-lettered it, and step 3's `replay --dead-letters` is what brings it back.
    if first["event_id"] not in listed.stdout:
        assert record(db, first["event_id"]).get("status") == "dead", listed.stdout
    section("WordPress outage", blocks=slice(1, 2))  # pause
    # While paused, an event arriving during the outage is held, not retried to death.
    second = send(cli, "rb-hmac")
    wait_for(status_is(db, second["event_id"], "held"), "the new event held")

    stack.proxy.clear()  # WordPress is back
    section("WordPress outage", blocks=slice(2, 3))  # resume, replay dead letters
    wait_for(status_is(db, second["event_id"], "delivered"), "the held event delivered")
    assert len(wordpress.find(second["provider_id"])) == 1
    assert cli.json("status")["control"]["paused"] is False
    # The event that was retrying is Pub/Sub's to redeliver (held at its next attempt
    # while paused, or delivered after): never lost, never doubled.
    wait_for(
        lambda: status_is(db, first["event_id"], "delivered", "published", "held")(),
        "the retried event accounted for",
    )
    assert len(wordpress.find(first["provider_id"])) <= 1


def test_failed_deliveries(stack, cli, db, wordpress, section):
    stack.proxy.set(fail_next=1, fail_status=422)
    sent = send(cli, "rb-stripe")
    key = sent["event_id"]
    wait_for(status_is(db, key, "failed"), "status failed")
    assert wordpress.find(sent["provider_id"]) == []

    listed, shown, replayed = section("Failed deliveries", KEY=key)
    assert key in listed.stdout
    assert "422" in shown.stdout
    assert "wordpress_rejected" in shown.stdout
    assert "replayed" in replayed.stderr
    wait_for(status_is(db, key, "delivered"), "delivered after the replay")
    assert len(wordpress.find(sent["provider_id"])) == 1


def test_ingress_answers_5xx(stack, db, wordpress, section):
    """A record stored but never published (the publish failed): what the ingress leaves."""
    now = datetime.now(UTC)
    provider_id = f"evt_lost_{now.timestamp():.0f}"
    body = json.dumps({"id": provider_id, "status": "completed", "summary": "lost"}).encode()
    key = event_key("rb-hmac", provider_id)
    raw = RawStore(PROJECT, BUCKET, 10)
    name = raw_object_name("rb-hmac", key, now)
    raw.put(name, body, {"provider_event_id": provider_id, "scheme": "hmac-timestamp"})
    stuck = new_record(
        source="rb-hmac",
        scheme="hmac-timestamp",
        provider_id=provider_id,
        received_at=now - timedelta(minutes=10),
        raw_uri=raw.uri(name),
        body_sha256="0" * 64,
        ttl_days=30,
    )
    db.collection("events").document(key).create(stuck)

    status, replayed = section("Ingress answers 5xx")
    assert re.search(r"received [1-9]", status.stdout), status.stdout
    assert "replayed" in replayed.stderr
    wait_for(status_is(db, key, "delivered"), "the stuck event delivered")
    assert len(wordpress.find(provider_id)) == 1


def test_published_events_are_not_delivered(db, section):
    now = datetime.now(UTC)
    key = event_key("rb-hmac", f"evt_stale_{now.timestamp():.0f}")
    stale = new_record(
        source="rb-hmac",
        scheme="hmac-timestamp",
        provider_id="evt_stale",
        received_at=now - timedelta(hours=2),
        raw_uri=f"gs://{BUCKET}/nowhere.json",
        body_sha256="0" * 64,
        ttl_days=30,
    )
    stale["status"] = "published"
    db.collection("events").document(key).create(stale)
    try:
        listed, replayed = section("Published events are not delivered")
        assert key in listed.stdout
        assert "replayed" in replayed.stderr
        record = db.collection("events").document(key).get().to_dict()
        # re-sent: marked as replayed, or already picked up by deliver (whose raw
        # payload is missing here, so it fails) before the mark landed
        assert record.get("replayed_from") == "published" or record["status"] == "failed"
    finally:
        db.collection("events").document(key).delete()


def test_pausing_during_maintenance(cli, db, wordpress, section):
    paused, status = section("Pausing during maintenance", blocks=slice(0, 1))
    assert "paused" in paused.stdout
    assert "deliveries: paused" in status.stdout
    assert "WordPress maintenance" in status.stdout
    sent = send(cli, "rb-stripe")
    wait_for(status_is(db, sent["event_id"], "held"), "held while paused")
    assert wordpress.find(sent["provider_id"]) == []

    (resumed,) = section("Pausing during maintenance", blocks=slice(1, 2))
    assert "replayed" in resumed.stderr
    wait_for(status_is(db, sent["event_id"], "delivered"), "delivered after resume")
    assert len(wordpress.find(sent["provider_id"])) == 1


def test_rotating_a_provider_secret(stack, cli, local_file, tmp_path, section):
    old = stack.source_secrets["rb-github"][0]
    new = "github-secret-" + "b" * 24
    secret_file = tmp_path / "new-secret"
    secret_file.write_text(new)

    section("Rotating a provider secret", blocks=slice(0, 1), SOURCE="rb-github",
            NEW_SECRET_FILE=str(secret_file))  # fmt: skip
    # Grace period: the provider may still sign with the old secret, or already the new one.
    send(cli, "rb-github", "--secret", old)
    accepted(cli, "rb-github", "--secret", new)
    send(cli, "rb-github")  # the default signs with the newest: the new one
    send(cli, "rb-github", "--secret", old)
    described = json.loads(local_file.read_text())["sources"]["rb-github"]["secrets"]
    assert described == [new, old], "local.json follows the rotation"

    (generated,) = section("Rotating a provider secret", blocks=slice(1, 2), SOURCE="rb-github")
    rotation = json.loads(generated.stdout)
    assert rotation["enabled"] == 3
    assert rotation["value"]
    accepted(cli, "rb-github", "--secret", rotation["value"])
    send(cli, "rb-github", "--secret", old)

    section("Rotating a provider secret", blocks=slice(2, 3), SOURCE="rb-github")
    refused(cli, "rb-github", "--secret", old)
    refused(cli, "rb-github", "--secret", new)
    send(cli, "rb-github")  # the newest (generated) one is the one left
    assert json.loads(local_file.read_text())["sources"]["rb-github"]["secrets"] == [
        rotation["value"]
    ]


def _age_idempotency(wordpress_server: WordPressServer, keys: list[str]) -> None:
    """What a day does to the plugin: its Idempotency-Key records (kept 1 day) expire."""
    listed = ", ".join(f"'{k}'" for k in keys)
    wordpress_server.run_php(
        "global $wpdb; $user = get_user_by('login', 'hookpress-ingest');"
        "$table = Hookpress_Installer::table(Hookpress_Installer::IDEMPOTENCY_TABLE);"
        f"foreach ([{listed}] as $k) {{ $wpdb->update($table,"
        " ['expires_at' => '2000-01-01 00:00:00'],"
        " ['key_hash' => Hookpress_Idempotency::key_hash($user->ID, $k)]); }"
        "Hookpress_Idempotency::purge_expired();"
    )


def test_replaying_a_day_from_gcs(cli, db, wordpress, wordpress_server, section):
    sent = [send(cli, "rb-github") for _ in range(2)]
    original = {}
    for s in sent:
        wait_for(status_is(db, s["event_id"], "delivered"), "delivered")
        original[s["event_id"]] = record(db, s["event_id"])
    raw_uri = original[sent[0]["event_id"]]["raw_uri"]
    yyyy, mm, dd = re.search(r"/(\d{4})/(\d{2})/(\d{2})/", raw_uri).groups()
    # The records are lost (an expired TTL, a restored database); the raw payloads are not.
    for s in sent:
        db.collection("events").document(s["event_id"]).delete()
    # Days later: the rebuilt received_at is the object's creation time, which may
    # differ from the lost one by a fraction of a second (the ingress does not store
    # received_at in the object's metadata); within the plugin's one-day idempotency
    # window a payload without a time of its own would then differ by occurred_at.
    _age_idempotency(wordpress_server, list(original))

    dry_run, replayed = section(
        "Replaying a day from GCS", blocks=slice(0, 1), SOURCE="rb-github", DAY=f"{yyyy}-{mm}-{dd}"
    )
    assert "would_rebuild" in dry_run.stderr
    assert "rebuilt" in replayed.stderr
    for s in sent:
        wait_for(status_is(db, s["event_id"], "delivered"), "rebuilt and delivered")
        rebuilt = record(db, s["event_id"])
        assert rebuilt["provider_event_id"] == s["provider_id"]
        assert rebuilt["scheme"] == "github"
        assert rebuilt["event_type"] == "ping"
        assert rebuilt["rebuilt_from"] == rebuilt["raw_uri"]
        lost = original[s["event_id"]]["received_at"]
        assert abs((rebuilt["received_at"] - lost).total_seconds()) < 1, "the original time"
        assert len(wordpress.find(s["provider_id"])) == 1, "delivered again, still one post"

    (month,) = section(
        "Replaying a day from GCS", blocks=slice(1, 2), SOURCE="rb-github", MONTH=f"{yyyy}/{mm}"
    )
    assert "delivered" in month.stderr
    assert "rebuilt" not in month.stderr


def test_finding_an_event_by_provider_id(cli, db, section):
    sent = send(cli, "rb-stripe")
    wait_for(status_is(db, sent["event_id"], "delivered"), "delivered")
    shown, as_json = section(
        "Finding an event by provider id", SOURCE="rb-stripe", PROVIDER_ID=sent["provider_id"]
    )
    assert sent["event_id"] in shown.stdout
    assert "delivered" in shown.stdout
    document = json.loads(as_json.stdout)
    assert document["event_key"] == sent["event_id"]
    assert json.loads(document["payload"])["id"] == sent["provider_id"]
