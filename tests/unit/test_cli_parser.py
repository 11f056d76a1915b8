"""The ``hookpress`` command line without a stack: help, usage errors and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hookpress.cli import ExitCode, main
from hookpress.cli._app import build_parser
from hookpress.ops.target import EMULATOR_VARIABLES


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No stack anywhere: an empty working directory, no HOOKPRESS_* variables, and the
    emulator variables restored afterwards (commands point them at the stack they use)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("HOOKPRESS_"):
            monkeypatch.delenv(name)
    for name in EMULATOR_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, "unset"))


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


COMMANDS = [path for path, _ in _commands(build_parser())]


def test_the_command_tree():
    assert COMMANDS == [
        ("send",),
        ("sign",),
        ("events",),
        ("events", "show"),
        ("events", "list"),
        ("replay",),
        ("pause",),
        ("resume",),
        ("status",),
        ("secrets",),
        ("secrets", "rotate"),
        ("keys",),
        ("keys", "refresh"),
        ("smoke",),
    ]


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "hookpress")
def test_every_command_has_help_with_the_exit_codes(path, capsys):
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: hookpress")
    for code in ExitCode:
        assert re.search(rf"^  {int(code)}\s", text, re.MULTILINE), f"exit code {code} undocumented"


def test_the_console_script_is_installed_and_answers():
    script = Path(sys.executable).parent / "hookpress"
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith("hookpress ")


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        [],
        ["replay"],
        ["replay", "--dead-letters", "--status", "dead"],
        ["replay", "--gcs-prefix", "raw/", "--day", "today"],
        ["replay", "not-a-key"],
        ["replay", "--status", "published"],
        ["replay", "--status", "held", "--since", "yesterday-ish"],
        ["replay", "--dead-letters", "--limit", "0"],
        ["events", "show"],
        ["events", "show", "xyz"],
        ["events", "show", "a" * 64, "--provider-id", "evt_1", "--source", "s"],
        ["events", "list", "--limit", "0"],
        ["events", "list", "--status", "gone"],
        ["secrets", "rotate", "s", "--value", "x", "--retire"],
    ],
)
def test_usage_errors_exit_2_before_touching_any_stack(argv, capsys):
    assert main(argv, env={}) == ExitCode.USAGE
    assert capsys.readouterr().err


def test_no_stack_anywhere_exits_4_and_says_what_to_do(capsys):
    assert main(["status"], env={}) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert "no stack to talk to" in err
    assert "nox -s dev" in err
    assert "--stack-outputs" in err


def _stale_local(tmp_path: Path) -> Path:
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"project": "p", "pid": 2**22 + 12345, "emulators": {}}))
    return path


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_stack_options_are_read_before_or_after_the_command(tmp_path, capsys, before):
    local = str(_stale_local(tmp_path))
    argv = ["--local", local, "status"] if before else ["status", "--local", local]
    assert main(argv, env={}) == ExitCode.CONFIG
    assert "is not running any more" in capsys.readouterr().err


def test_the_local_stack_is_found_from_a_subdirectory(tmp_path, monkeypatch, capsys):
    (tmp_path / ".hookpress").mkdir()
    _stale_local(tmp_path / ".hookpress")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    assert main(["status"], env={}) == ExitCode.CONFIG
    assert ".hookpress/local.json (pid" in capsys.readouterr().err


def test_a_local_and_a_deployed_stack_at_once_is_refused(tmp_path, capsys):
    local = str(_stale_local(tmp_path))
    assert main(["status", "--local", local, "--project", "p"], env={}) == ExitCode.CONFIG
    assert "give one of them" in capsys.readouterr().err
