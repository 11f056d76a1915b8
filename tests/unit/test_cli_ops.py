"""The pure parts of hookpress.ops: parsing, rate limiting, stack descriptions, signed sends."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hookpress import config_rules as rules
from hookpress.backends import BackendError
from hookpress.backends.firestore import Snapshot
from hookpress.events import event_key
from hookpress.ops.deadletters import event_key_of
from hookpress.ops.replay import Action, Item, RateLimiter, Report
from hookpress.ops.selection import (
    Selection,
    parse_day,
    parse_rate,
    parse_statuses,
    parse_when,
)
from hookpress.ops.sending import example_payload, post, sign_request
from hookpress.ops.target import (
    LOCAL_FILE,
    Overrides,
    TargetError,
    find_local_file,
    load_cloud,
    load_local,
    resolve,
)
from hookpress.payloads import parse_payload
from hookpress.providers import PROVIDERS

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

# -- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(days=7)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05+02:00", datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)),
        ("2026-01-02 03:04", datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday-ish", "5 parsecs", "-2h", "2026-13-01"])
def test_parse_when_refuses_with_a_sentence(text):
    with pytest.raises(ValueError, match="is not a time"):
        parse_when(text, NOW)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("20/s", 20), ("20", 20), ("600/m", 10), ("3600/h", 1), ("0.5/s", 0.5), ("30/min", 0.5)],
)
def test_parse_rate(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["fast", "0/s", "-1/s", "10/d", ""])
def test_parse_rate_refuses(text):
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_parse_day():
    today = date(2026, 3, 4)
    assert parse_day("today", today) == today
    assert parse_day("yesterday", today) == date(2026, 3, 3)
    assert parse_day("2026-01-02", today) == date(2026, 1, 2)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("01/02/2026", today)


def test_parse_statuses():
    assert parse_statuses("held, failed,held") == ("held", "failed")
    with pytest.raises(ValueError, match="unknown status 'gone'"):
        parse_statuses("held,gone")
    with pytest.raises(ValueError, match="unknown status"):
        parse_statuses(" , ")


def test_a_selection_matches_status_source_and_window():
    def snap(**data):
        return Snapshot("k", data, NOW)

    selection = Selection(
        statuses=("held",), since=NOW - timedelta(hours=1), until=NOW, sources=("a",)
    )
    assert selection.matches(snap(status="held", source="a", received_at=NOW - timedelta(1 / 24)))
    assert not selection.matches(snap(status="dead", source="a", received_at=NOW))
    assert not selection.matches(snap(status="held", source="b", received_at=NOW))
    assert not selection.matches(snap(status="held", source="a", received_at=NOW))  # until: open
    assert not selection.matches(snap(status="held", source="a"))  # no time, a window asked
    assert Selection().matches(snap())


# -- rate limiting and reports --------------------------------------------------------


def test_the_rate_limiter_spaces_calls_evenly():
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(4, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    clock[0] += 10  # idle for a while: no burst is saved up beyond the next slot
    limiter.wait()
    assert len(slept) == 4
    limiter.wait()
    assert slept[-1] == pytest.approx(0.25)


def test_no_rate_means_no_waiting():
    limiter = RateLimiter(None, sleep=lambda s: pytest.fail("slept"))
    for _ in range(100):
        limiter.wait()


def test_a_report_is_ok_only_when_nothing_is_left_to_do():
    report = Report()
    for action in (Action.REPLAYED, Action.REBUILT, Action.DELIVERED, Action.IN_FLIGHT):
        report.add(Item("k", action))
    assert report.ok
    assert report.counts[Action.REPLAYED] == 1
    for action in (Action.PENDING, Action.MISSING, Action.ERROR):
        failing = Report(items=[Item("k", action)])
        assert not failing.ok
    assert not Report(aborted="pubsub failed").ok


def test_the_event_key_of_a_dead_letter():
    key = "a" * 64
    assert event_key_of(b"{}", {"event_key": key}) == key
    assert event_key_of(json.dumps({"event_key": key}).encode(), {}) == key
    assert event_key_of(b"not json", {}) is None
    assert event_key_of(b'{"event_key": "../../etc"}', {}) is None


# -- stack descriptions ---------------------------------------------------------------


def _local(tmp_path: Path, **changes) -> Path:
    content = {
        "project": "hookpress-local",
        "ingress_url": "http://127.0.0.1:8001/",
        "sources": {
            "stripe": {"scheme": "stripe", "secrets": ["whsec_new", "whsec_old"]},
            "gh": {"scheme": "github", "secrets": ["s"], "secret": "custom-id"},
        },
        "emulators": {
            "pubsub": "127.0.0.1:1",
            "firestore": "127.0.0.1:2",
            "storage": "http://127.0.0.1:3",
        },
        "bucket": "hookpress-raw",
        "topics": {"events": "events", "dead": "events-dead"},
        "subscriptions": {"dead_pull": "events-dead-pull"},
        "secrets_file": str(tmp_path / "secrets.json"),
        **changes,
    }
    path = tmp_path / "local.json"
    path.write_text(json.dumps(content))
    return path


def test_a_local_stack_description(tmp_path):
    target = load_local(_local(tmp_path), env={})
    assert target.kind == "local"
    assert target.project == "hookpress-local"
    assert target.bucket == "hookpress-raw"
    assert target.ingress_url == "http://127.0.0.1:8001"
    stripe = target.source("stripe")
    assert stripe.url == "http://127.0.0.1:8001/stripe"
    assert stripe.secret == "hookpress-source-stripe"
    assert stripe.inline_secrets == ("whsec_new", "whsec_old")
    assert target.source("gh").secret == "custom-id"
    assert target.secrets.backend == "file"
    assert target.emulators["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:3"
    with pytest.raises(TargetError, match=r"unknown source 'nope'.*gh, stripe"):
        target.source("nope")


def test_the_operator_tools_read_the_ttls_with_the_functions_own_bounds(tmp_path):
    """HOOKPRESS_EVENT_TTL_DAYS and HOOKPRESS_CONTROL_TTL_S: config_rules' defaults and bounds."""
    path = _local(tmp_path)
    target = load_local(path, env={})
    assert (target.event_ttl_days, target.control_ttl_s) == (
        rules.EVENT_TTL_DAYS.default,
        rules.CONTROL_TTL_S.default,
    )
    both = {"HOOKPRESS_EVENT_TTL_DAYS": "7", "HOOKPRESS_CONTROL_TTL_S": "2.5"}
    target = load_local(path, env=both)
    assert (target.event_ttl_days, target.control_ttl_s) == (7, 2.5)
    for name, value in [
        ("HOOKPRESS_EVENT_TTL_DAYS", "0"),
        ("HOOKPRESS_EVENT_TTL_DAYS", "seven"),
        ("HOOKPRESS_CONTROL_TTL_S", "301"),
    ]:
        with pytest.raises(TargetError, match=name):
            load_local(path, env={name: value})
        with pytest.raises(rules.SettingsError):
            getattr(rules, name.removeprefix("HOOKPRESS_")).from_env({name: value})


def test_activate_points_the_clients_at_the_emulators_or_away_from_them(tmp_path):
    local = load_local(_local(tmp_path), env={})
    environ = {"PUBSUB_EMULATOR_HOST": "stale", "OTHER": "kept"}
    local.activate(environ)
    assert environ["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:1"
    assert environ["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:2"
    cloud = load_cloud(outputs_file=None, env={"HOOKPRESS_PROJECT": "acme"})
    cloud.activate(environ)
    assert environ == {"OTHER": "kept"}, "a deployed stack never talks to an emulator"


def test_a_local_description_from_a_dead_stack_is_refused(tmp_path):
    with pytest.raises(TargetError, match=r"pid \d+\) is not running any more"):
        load_local(_local(tmp_path, pid=2**22 + 4321), env={})
    assert load_local(_local(tmp_path, pid=os.getpid()), env={}).project == "hookpress-local"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"project": ""}, "names no project"),
        ({"emulators": {"pubsub": "127.0.0.1:1"}}, "lacks the emulator addresses"),
    ],
)
def test_an_incomplete_local_description_says_what_is_missing(tmp_path, change, message):
    with pytest.raises(TargetError, match=message):
        load_local(_local(tmp_path, **change), env={})


def test_an_unreadable_local_description(tmp_path):
    with pytest.raises(TargetError, match="does not exist"):
        load_local(tmp_path / "missing.json", env={})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(TargetError, match="not readable JSON"):
        load_local(bad, env={})


#: the shape of `pulumi stack output --json` for this program (infra/__main__.py)
OUTPUTS = {
    "ingressUrl": "https://europe-west1-acme.cloudfunctions.net/hookpress-ingress",
    "ingressUrls": {
        "stripe": "https://europe-west1-acme.cloudfunctions.net/hookpress-ingress/stripe",
        "openai": "https://europe-west1-acme.cloudfunctions.net/hookpress-ingress/openai",
    },
    "deliverUrl": "https://europe-west1-acme.cloudfunctions.net/hookpress-deliver",
    "egressIps": ["34.140.12.34"],
    "rawBucket": "acme-hookpress-raw",
    "topics": {"events": "hookpress-events", "eventsDead": "hookpress-events-dead"},
    "subscriptions": {
        "deliverPush": "hookpress-events-deliver",
        "deadLetterPush": "hookpress-events-dead-deliver",
        "eventsDeadPull": "hookpress-events-dead-pull",
    },
    "serviceAccounts": {"ingress": "hookpress-ingress@acme-prod.iam.gserviceaccount.com"},
    "secrets": {
        "sources": {"stripe": "hookpress-source-stripe", "openai": "openai-signing"},
        "wordpress": "hookpress-wp-app-password",
    },
    "firestoreDatabase": "hookpress",
}


def test_a_deployed_stack_from_its_pulumi_outputs(tmp_path):
    outputs = tmp_path / "stack.json"
    outputs.write_text(json.dumps(OUTPUTS))
    target = load_cloud(outputs_file=outputs, env={})
    assert target.kind == "cloud"
    assert target.project == "acme-prod", "read from the service accounts"
    assert target.bucket == "acme-hookpress-raw"
    assert target.events_topic == "hookpress-events"
    assert target.dead_subscription == "hookpress-events-dead-pull"
    assert target.firestore_database == "hookpress"
    assert target.secrets.backend == "secretmanager"
    assert target.source("stripe").scheme == "stripe", "a source named after its scheme"
    assert target.source("stripe").url == OUTPUTS["ingressUrls"]["stripe"]
    assert target.source("openai").provider == "openai", "a source named after its provider"
    assert target.source("openai").scheme == "standard-webhooks"
    assert target.source("openai").secret == "openai-signing"


def test_flags_beat_the_environment_which_beats_the_outputs(tmp_path):
    outputs = tmp_path / "stack.json"
    outputs.write_text(json.dumps(OUTPUTS))
    env = {
        "HOOKPRESS_PROJECT": "from-env",
        "HOOKPRESS_RAW_BUCKET": "env-bucket",
        "HOOKPRESS_SOURCES": json.dumps({"openai": {"scheme": "standard-webhooks"}}),
    }
    target = load_cloud(outputs_file=outputs, env=env)
    assert (target.project, target.bucket) == ("from-env", "env-bucket")
    assert target.source("openai").scheme == "standard-webhooks"
    assert target.source("openai").secret == "openai-signing"
    flagged = load_cloud(
        outputs_file=outputs,
        env=env,
        overrides=Overrides(project="flag", bucket="flag-bucket", ingress_url="https://x/"),
    )
    assert (flagged.project, flagged.bucket) == ("flag", "flag-bucket")
    assert flagged.source("stripe").url == "https://x/stripe"


def test_a_deployed_stack_needs_a_project():
    with pytest.raises(TargetError, match="no Google Cloud project"):
        load_cloud(outputs_file=None, env={})
    with pytest.raises(TargetError, match="raw-payload bucket is not known"):
        load_cloud(outputs_file=None, env={"HOOKPRESS_PROJECT": "p"}).require_bucket()


def test_which_stack(tmp_path):
    local = _local(tmp_path)
    assert resolve(local=local, env={}, cwd=tmp_path).kind == "local"
    assert resolve(env={"HOOKPRESS_LOCAL": str(local)}, cwd=tmp_path).kind == "local"
    assert resolve(env={"HOOKPRESS_PROJECT": "p"}, cwd=tmp_path).kind == "cloud"
    outputs = tmp_path / "stack.json"
    outputs.write_text(json.dumps(OUTPUTS))
    assert resolve(stack_outputs=outputs, env={}, cwd=tmp_path).project == "acme-prod"
    with pytest.raises(TargetError, match="give one of them"):
        resolve(local=local, overrides=Overrides(project="p"), env={}, cwd=tmp_path)
    with pytest.raises(TargetError, match="no stack to talk to"):
        resolve(env={}, cwd=tmp_path)
    (tmp_path / ".hookpress").mkdir()
    (tmp_path / LOCAL_FILE).write_text(local.read_text())
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_local_file(tmp_path / "a" / "b") == tmp_path / LOCAL_FILE
    assert resolve(env={}, cwd=tmp_path / "a" / "b").local_file == tmp_path / LOCAL_FILE


# -- signed sends ---------------------------------------------------------------------

TWILIO_URL = "https://hooks.example.com/twilio"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_signed_example_verifies_and_its_key_is_the_one_the_ingress_computes(name):
    provider = PROVIDERS[name]
    impl = provider.scheme
    keys = impl.new_secret()
    now = NOW.timestamp()
    body = example_payload(name, now, "0123456789abcdef")
    request = sign_request(
        source=f"src-{name}", scheme=name, secret=keys.sign, body=body, now=now, url=TWILIO_URL
    )
    headers = {k.lower(): v for k, v in request.headers.items()}
    verified = impl.verify(body, headers, [keys.verify], now=now, url=TWILIO_URL)
    expected = "application/x-www-form-urlencoded" if name == "twilio" else "application/json"
    assert headers["content-type"] == expected
    assert verified.body_format == ("form" if name == "twilio" else "json")
    payload = parse_payload(body, verified.body_format)
    pid = provider.event_id(verified.delivery_id, headers, payload, body)
    assert request.provider_id == pid
    assert request.event_key == event_key(f"src-{name}", pid)
    if name not in {"twilio", "github"}:
        assert not pid.startswith("sha256:"), "a provider with an id should not fall back"


def test_examples_are_unique_per_nonce():
    for name in PROVIDERS:
        assert example_payload(name, 0, "aaaaaaaaaaaaaaaa") != example_payload(
            name, 0, "bbbbbbbbbbbbbbbb"
        )


def test_a_body_the_ingress_would_refuse_has_no_key():
    request = sign_request(source="s", scheme="stripe", secret="x", body=b"[1]", now=0)
    assert request.provider_id is None
    assert request.event_key is None


def test_post_reads_the_ingress_answer():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ok":
            return httpx.Response(202, json={"status": "accepted", "event_id": "k"})
        if request.url.path == "/busy":
            return httpx.Response(
                503, json={"status": "unavailable"}, headers={"Retry-After": "30"}
            )
        if request.url.path == "/html":
            return httpx.Response(502, text="<html>bad gateway</html>")
        raise httpx.ConnectError("refused")

    signed = sign_request(source="s", scheme="stripe", secret="x", body=b"{}", now=0)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:

        def send(path: str):
            return post(client, dataclasses.replace(signed, url=f"http://i{path}"))

        ok = send("/ok")
        assert (ok.http_status, ok.status, ok.event_id, ok.ok) == (202, "accepted", "k", True)
        busy = send("/busy")
        assert (busy.ok, busy.retry_after) == (False, "30")
        assert send("/html").status == "http 502"
        with pytest.raises(BackendError, match="ingress"):
            send("/down")


def test_ops_imports_without_rich_or_httpx():
    """hookpress.ops ships in every function archive, whose requirements have neither."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('rich', 'httpx', 'flask'): sys.modules[name] = None\n"
        "import hookpress.ops.control, hookpress.ops.deadletters\n"
        "import hookpress.ops.replay, hookpress.ops.rotation, hookpress.ops.selection\n"
        "import hookpress.ops.sending, hookpress.ops.target\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
