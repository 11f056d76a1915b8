"""The ``hookpress`` command against a real local stack, run as an operator runs it.

The runbook's scenarios (dead letters, outages, pause, rotation, replay from
GCS) are in test_runbook.py; this module covers the rest of the command:
every scheme through ``send``, ``sign`` for curl, ``events``, replay by key,
and the exit codes a script sees.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from hookpress.events import event_key
from hookpress.local.processes import free_port
from hookpress.local.stack import StackOptions
from hookpress.providers import PROVIDERS
from tests.e2e.cli_harness import Cli, stack_fixtures, wait_for

PROJECT = "hookpress-cli"
# One source per provider (hookpress send PROVIDER --example), and one signing v1a (Ed25519).
SOURCES: dict[str, Any] = {f"cli-{name}": name for name in sorted(PROVIDERS)}
SOURCES["cli-standard-webhooks-v1a"] = {"provider": "standard-webhooks", "key": "ed25519"}


OPTIONS = StackOptions(
    project=PROJECT,
    sources=SOURCES,
    wp_read_timeout_s=3,
    breaker_threshold=1000,
)
stack, local_file, cli, db, wordpress, no_faults = stack_fixtures("cli", OPTIONS)


def status_of(db: firestore.Client, key: str) -> Any:
    return (db.collection("events").document(key).get().to_dict() or {}).get("status")


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_send_signs_each_provider_and_the_event_arrives_in_wordpress(cli, db, wordpress, source):
    sent = cli.json("send", source, "--example")
    assert sent["http_status"] == 202
    assert sent["status"] == "accepted"
    assert sent["event_id"] == event_key(source, sent["provider_id"]), "the key printed is stored"
    wait_for(lambda: status_of(db, sent["event_id"]) == "delivered", f"{source} delivered")
    posts = wordpress.find(sent["provider_id"])
    assert len(posts) == 1
    assert posts[0]["meta"]["source"] == source


def test_send_reads_a_file_or_stdin_and_a_repeat_is_a_duplicate_with_exit_0(cli, tmp_path):
    body = json.dumps({"id": "evt_cli_file_1", "status": "completed", "summary": "from a file"})
    payload = tmp_path / "event.json"
    payload.write_text(body)
    first = cli.ok("send", "cli-hmac-timestamp", str(payload))
    assert re.match(r"202 accepted\s+event_id=[0-9a-f]{64}", first.stdout), first.stdout
    again = cli.ok("send", "cli-hmac-timestamp", "-", stdin=body)
    assert again.stdout.startswith("200 duplicate")
    assert again.stdout.split("event_id=")[1] == first.stdout.split("event_id=")[1]


def test_refusals_have_exit_codes_a_script_can_use(cli, local_file, tmp_path):
    wrong = cli.run("send", "cli-stripe", "--example", "--secret", "whsec_wrong")
    assert wrong.returncode == 1
    assert "401" in wrong.stdout
    assert "invalid signature" in wrong.stdout

    unknown = cli.run("send", "nope", "--example")
    assert unknown.returncode == 3
    assert "unknown source 'nope'" in unknown.stderr
    assert "cli-stripe" in unknown.stderr, "the error lists the known sources"

    no_body = cli.run("send", "cli-stripe", "/does/not/exist.json")
    assert no_body.returncode == 2

    # The stack's ingress is gone: a script should retry later.
    down = json.loads(local_file.read_text())
    down["ingress_url"] = f"http://127.0.0.1:{free_port()}"
    down_file = tmp_path / "down.json"
    down_file.write_text(json.dumps(down))
    unavailable = Cli(down_file).run("send", "cli-stripe", "--example")
    assert unavailable.returncode == 5
    assert "did not answer" in unavailable.stderr


def test_sign_prints_headers_that_curl_or_any_client_can_post(cli, stack, db, tmp_path):
    body = json.dumps({"id": "evt_cli_signed_1", "type": "invoice.paid"}).encode()
    payload = tmp_path / "event.json"
    payload.write_bytes(body)
    signed = cli.ok("sign", "cli-stripe", str(payload))
    headers = dict(line.split(": ", 1) for line in signed.stdout.splitlines())
    assert set(headers) == {"Stripe-Signature", "Content-Type"}
    assert stack.ingress is not None
    response = httpx.post(f"{stack.ingress.url}/cli-stripe", content=body, headers=headers)
    assert response.status_code == 202, response.text

    as_json = cli.json("sign", "cli-github", "-", stdin=body)
    assert as_json["url"].endswith("/cli-github")
    assert as_json["event_key"] == event_key("cli-github", as_json["provider_id"])
    response = httpx.post(as_json["url"], content=body, headers=as_json["headers"])
    assert response.status_code == 202, response.text
    assert response.json()["event_id"] == as_json["event_key"]


def test_events_show_and_list(cli, db):
    sent = cli.json("send", "cli-slack", "--example")
    key = sent["event_id"]
    wait_for(lambda: status_of(db, key) == "delivered", "delivered")

    by_key = cli.json("events", "show", key)
    by_id = cli.json(
        "events", "show", "--source", "cli-slack", "--provider-id", sent["provider_id"]
    )
    assert by_key == by_id
    assert by_key["status"] == "delivered"
    assert by_key["scheme"] == "slack"
    assert by_key["downstream_status"] in {200, 201}
    text = cli.ok("events", "show", key).stdout
    assert key in text
    assert "delivered" in text

    listed = cli.json("events", "list", "--status", "delivered", "--source", "cli-slack")
    assert key in [e["event_key"] for e in listed]
    assert {e["source"] for e in listed} == {"cli-slack"}
    assert cli.json("events", "list", "--status", "dead", "--source", "cli-slack") == []
    table = cli.ok("events", "list", "--since", "1h", "--limit", "500").stdout
    assert key in table, "the table never cuts a key"

    missing = cli.run("events", "show", "0" * 64)
    assert missing.returncode == 3
    assert cli.run("events", "show", "not-a-key").returncode == 2
    assert cli.run("events", "list", "--status", "lost").returncode == 2


def test_replay_by_key_dry_run_then_for_real_then_again_is_harmless(cli, stack, db, wordpress):
    stack.proxy.set(fail_next=1, fail_status=422)
    sent = cli.json("send", "cli-hmac-timestamp", "--example")
    key = sent["event_id"]
    wait_for(lambda: status_of(db, key) == "failed", "failed")

    dry = cli.json("replay", key, "--dry-run")
    assert dry["counts"] == {"would_replay": 1}
    assert dry["dry_run"] is True
    assert status_of(db, key) == "failed", "a dry run changes nothing"

    done = cli.json("replay", key)
    assert done["counts"] == {"replayed": 1}
    assert done["items"][0]["status"] == "failed"
    wait_for(lambda: status_of(db, key) == "delivered", "delivered after replay")

    again = cli.json("replay", key)
    assert again["counts"] == {"delivered": 1}
    assert again["ok"] is True
    assert len(wordpress.find(sent["provider_id"])) == 1

    missing = cli.run("replay", "f" * 64, "--json")
    assert missing.returncode == 1, "a key with no record is not replayed: exit 1"
    assert json.loads(missing.stdout)["counts"] == {"missing": 1}


def test_replay_refuses_ambiguous_selections(cli):
    assert cli.run("replay").returncode == 2
    assert cli.run("replay", "a" * 64, "--dead-letters").returncode == 2
    assert cli.run("replay", "--status", "delivered").returncode == 2
    assert cli.run("replay", "--dead-letters", "--source", "x").returncode == 2
    assert cli.run("replay", "--status", "failed", "--rate", "fast").returncode == 2


def test_replay_of_many_events_delivers_them_through_the_batch_route(cli, stack, db, wordpress):
    # 12 events fail (WordPress answers 422 through the fault proxy), then are replayed.
    stack.proxy.set(fail_next=12, fail_status=422)
    sent = [cli.json("send", "cli-stripe", "--example") for _ in range(12)]
    keys = [s["event_id"] for s in sent]
    wait_for(lambda: all(status_of(db, k) == "failed" for k in keys), "failed")

    done = cli.run("replay", *keys, "--rate", "1000/s", "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "straight to WordPress" in done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"replayed": 12}
    assert {i["detail"] for i in report["items"]} == {"delivered straight to WordPress (HTTP 201)"}
    # Delivered by the time replay returns (no Pub/Sub round trip), once each.
    for key, event in zip(keys, sent, strict=True):
        record = db.collection("events").document(key).get().to_dict()
        assert record["status"] == "delivered"
        assert record["downstream_status"] == 201
        assert [p["id"] for p in wordpress.find(event["provider_id"])] == [record["wp_post_id"]]
    again = cli.json("replay", *keys)
    assert again["counts"] == {"delivered": 12}


def test_replay_republishes_when_the_batch_route_is_out_of_reach(cli, stack, db, plugin_options):
    stack.proxy.set(fail_next=10, fail_status=422)
    keys = [cli.json("send", "cli-github", "--example")["event_id"] for _ in range(10)]
    wait_for(lambda: all(status_of(db, k) == "failed" for k in keys), "failed")
    # This machine is not on the allowlist (nor is deliver, behind the fault proxy here).
    plugin_options(allowlist=["192.0.2.1"])

    forced = cli.run("replay", *keys, "--via", "wordpress")
    assert forced.returncode == 4, forced.stderr
    assert "not on the plugin's allowlist" in forced.stderr

    auto = cli.run("replay", *keys, "--json")
    assert "republishing through Pub/Sub" in auto.stderr
    assert json.loads(auto.stdout)["counts"] == {"replayed": 10}
    # deliver is refused too (403: failed); once allowed again, replay goes straight.
    wait_for(lambda: all(status_of(db, k) == "failed" for k in keys), "refused by WordPress")
    plugin_options(allowlist=["127.0.0.1", "::1"])
    final = cli.run("replay", *keys, "--json")
    assert "straight to WordPress" in final.stderr
    assert json.loads(final.stdout)["counts"] == {"replayed": 10}
    assert all(status_of(db, k) == "delivered" for k in keys)


def test_replay_via_wordpress_takes_keys_and_selections_only(cli):
    assert cli.run("replay", "--dead-letters", "--via", "wordpress").returncode == 2
    assert cli.run("replay", "--day", "today", "--via", "wordpress").returncode == 2
