"""``nox -s dev``'s live event log and its printed command, without starting anything."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from hookpress.local.dev import LogTail, event_lines, format_event, main, send_command
from hookpress.logs import read_records

KEY = "6728eb5085eeb51c23522e69ccd99b5370b0d6bfa68f072ddec47597f6afb042"
TIME = "2026-11-29T02:07:25.123456+00:00"


def line(component: str, outcome: str | None, **fields) -> dict:
    record = {"severity": "INFO", "component": component, "time": TIME, **fields}
    record["message"] = f"{component} {outcome}" if outcome else f"{component} ready"
    if outcome:
        record["outcome"] = outcome
    return record


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (line("ingress", "accepted", source="stripe", event_key=KEY), "accepted → published"),
        (line("ingress", "duplicate", source="stripe", event_key=KEY), "duplicate"),
        (
            line("ingress", "duplicate", source="s", event_key=KEY, reason="republished"),
            "duplicate → re-published",
        ),
        (
            line("ingress", "unauthorized", source="s", http_status=401, reason="no_match"),
            "rejected 401 unauthorized (no_match)",
        ),
        (
            line("deliver", "delivered", source="s", event_key=KEY, downstream_status=201,
                 wp_post_id=4),
            "delivered (WordPress 201, post 4)",
        ),
        (line("deliver", "held", source="s", event_key=KEY), "held (deliveries are paused)"),
        (line("deliver", "dead", source="s", event_key=KEY), "dead (delivery attempts exhausted)"),
        (
            line("deliver", "failed", source="s", event_key=KEY, downstream_status=422,
                 reason="wordpress_rejected"),
            "failed: WordPress 422, wordpress_rejected",
        ),
        (
            line("deliver", "retry", source="s", event_key=KEY, downstream_status=503,
                 reason="wordpress_unavailable", delivery_attempt=2),
            "retry: WordPress 503, wordpress_unavailable (attempt 2)",
        ),
    ],
)  # fmt: skip
def test_one_line_per_step(record, expected):
    formatted = format_event(record)
    assert formatted is not None
    assert formatted.startswith("02:07:25  ")
    assert formatted.endswith("  " + expected)
    if "event_key" in record:
        assert KEY[:12] in formatted


@pytest.mark.parametrize(
    "record",
    [
        line("ingress", None),  # "ingress ready"
        line("deliver", None, wordpress="http://x"),
        {**line("deliver", "push_auth_disabled"), "message": "PUSH AUTHENTICATION IS OFF"},
        line("reconcile", "republished", event_key=KEY),
    ],
)
def test_records_that_are_not_an_event_moving_are_left_out(record):
    assert format_event(record) is None


def test_the_tail_returns_complete_new_lines_only(tmp_path):
    log = tmp_path / "deliver.log"
    tail = LogTail(log)
    assert tail.lines() == [], "a log that does not exist yet"
    log.write_text("[gunicorn] booting\n" + json.dumps(line("deliver", "held", event_key=KEY)))
    assert tail.lines() == ["[gunicorn] booting"], "the half-written record waits"
    with log.open("a") as handle:
        handle.write("\n")
    (record,) = tail.lines()
    assert json.loads(record)["outcome"] == "held"
    assert tail.lines() == []


def test_event_lines_reads_every_log(tmp_path):
    ingress, deliver = tmp_path / "ingress.log", tmp_path / "deliver.log"
    ingress.write_text(json.dumps(line("ingress", "accepted", source="s", event_key=KEY)) + "\n")
    deliver.write_text("not json\n{broken\n" + json.dumps(line("deliver", "dead")) + "\n")
    lines = event_lines([LogTail(ingress), LogTail(deliver)])
    assert [x.split("  ")[-1] for x in lines] == [
        "accepted → published",
        "dead (delivery attempts exhausted)",
    ]


def test_a_log_s_records_are_its_json_object_lines_only():
    lines = ["plain text", '{"a": 1}', "{broken", "[1]", '{"b": 2}', "", '"{x}"']
    assert list(read_records(lines)) == [{"a": 1}, {"b": 2}]


def test_the_printed_command_names_the_stack_it_was_started_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / ".hookpress" / "local.json"
    command = send_command(local, "stripe")
    assert command[-5:] == ["send", "stripe", "--example", "--local", ".hookpress/local.json"]
    assert Path(command[0]).name in {"hookpress", "python", "python3"}
    assert shlex.split(shlex.join(command)) == command


def test_bad_arguments_exit_2_before_anything_starts(capsys):
    assert main(["--source", "x=nonsense", "--no-bootstrap"]) == 2
    assert "unknown provider 'nonsense'" in capsys.readouterr().err
