"""``hookpress smoke`` against a local stack that runs reconcile on a schedule (as nox -s dev does).

The same command is run against the rehearsal of the deployed configuration
in ``tests/rehearse`` (push authentication on, the program's wiring).
"""

from __future__ import annotations

import json
import re
import time

from hookpress.local.stack import StackOptions
from tests.e2e.cli_harness import stack_fixtures, wait_for

OPTIONS = StackOptions(
    project="hookpress-smoke",
    sources={"stripe": "stripe"},
    smoke_source=True,
    reconcile_every_s=2.0,
    wp_read_timeout_s=3,
    breaker_threshold=1000,
)
stack, local_file, cli, db, wordpress, no_faults = stack_fixtures("smoke", OPTIONS)


def test_the_local_stack_provisions_the_smoke_source_and_a_reconcile_job(stack, db) -> None:
    described = stack.local_json()
    assert described["sources"]["smoke"]["scheme"] == "hmac-timestamp"
    assert described["smoke"] == {"source": "smoke", "reconcile_every_s": 2.0}
    wait_for(lambda: db.collection("control").document("reconcile").get().exists, "a heartbeat")


def test_smoke_passes_with_one_verdict_per_check(cli, wordpress) -> None:
    done = cli.run("smoke")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert [re.split(r"\s{2,}|\s(?=\S)", line, maxsplit=2)[1] for line in lines] == [
        "ingress", "delivered", "dead", "reconcile",
    ]  # fmt: skip
    assert all(line.startswith("✓") for line in lines), done.stdout
    # The smoke event is a real post of source "smoke" in WordPress.
    report = cli.json("smoke")
    key = report["event_key"]
    record = cli.json("events", "show", key)
    assert record["status"] == "delivered"
    posts = wordpress.find(record["provider_event_id"])
    assert len(posts) == 1
    assert posts[0]["meta"]["source"] == "smoke"


def test_smoke_exits_1_when_wordpress_refuses(stack, cli) -> None:
    stack.proxy.set(always_status=503)
    done = cli.run("smoke", "--json", "--timeout", "8")
    assert done.returncode == 1, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["ingress"]["ok"]
    assert not checks["delivered"]["ok"]
    assert checks["reconcile"]["ok"]


def test_smoke_exits_5_when_a_backend_is_unreachable(stack, local_file, tmp_path) -> None:
    from tests.e2e.cli_harness import Cli

    described = json.loads(local_file.read_text())
    for emulator in ("firestore", "pubsub"):
        described["emulators"][emulator] = "127.0.0.1:9"  # nothing listens there
    described["ingress_url"] = "http://127.0.0.1:9"
    broken = tmp_path / "local.json"
    broken.write_text(json.dumps(described))
    started = time.monotonic()
    done = Cli(broken).run("smoke", "--json", "--timeout", "5")
    assert done.returncode == 5, done.stdout + done.stderr
    assert time.monotonic() - started < 120
    assert all(c["unavailable"] for c in json.loads(done.stdout)["checks"])


def test_smoke_exits_4_without_a_smoke_source(local_file, tmp_path) -> None:
    from tests.e2e.cli_harness import Cli

    described = json.loads(local_file.read_text())
    described["smoke"]["source"] = None
    plain = tmp_path / "local.json"
    plain.write_text(json.dumps(described))
    done = Cli(plain).run("smoke")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "names no smoke source" in done.stderr
