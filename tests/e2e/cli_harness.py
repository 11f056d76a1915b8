"""Helpers for the tests that drive the ``hookpress`` command and ``nox -s dev``.

The command is run as the installed console script, in a subprocess, exactly
as an operator runs it; WordPress is checked through the plugin's read-only
``wp/v2/ai-events`` route with the admin's application password, as a
headless front end would read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from hookpress.local import processes
from hookpress.local.emulators import Emulators
from hookpress.local.stack import LocalStack, StackOptions
from hookpress.local.wordpress import WordPressServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOOKPRESS = BIN / "hookpress"
WAIT_S = 60.0

#: variables that would point the command at a deployed stack
_CLOUD_VARIABLES = ("HOOKPRESS_PROJECT", "HOOKPRESS_STACK_OUTPUTS", "HOOKPRESS_LOCAL")


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy; a test failure after ``timeout_s``."""
    try:
        return processes.wait_for(check, what, timeout_s, interval_s=0.25)
    except processes.WaitTimeout as exc:
        raise AssertionError(str(exc)) from None


def local_json(stack: LocalStack) -> dict[str, Any]:
    """What ``nox -s dev`` writes for a stack."""
    return stack.local_json()


def write_local_json(stack: LocalStack, path: Path) -> Path:
    """Write the stack's description where the command will read it."""
    path.write_text(json.dumps(local_json(stack), indent=2))
    path.chmod(0o600)
    return path


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything naming a deployed stack."""
    env = {k: v for k, v in os.environ.items() if k not in _CLOUD_VARIABLES}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


@dataclass
class Cli:
    """Runs ``hookpress`` against one local stack description."""

    local: Path
    env: dict[str, str] = field(default_factory=clean_env)

    def run(
        self, *args: str, stdin: str | bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the command with ``--local``; return what it printed and its exit code."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        done = subprocess.run(
            [str(HOOKPRESS), *args, "--local", str(self.local)],
            input=data,
            capture_output=True,
            env=self.env,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def ok(self, *args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run and require exit code 0."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def json(self, *args: str, stdin: str | bytes | None = None) -> Any:
        """Run with ``--json`` (exit code 0 required) and parse stdout."""
        return json.loads(self.ok(*args, "--json", stdin=stdin).stdout)


@dataclass
class WordPressReader:
    """Reads ai_event posts as the admin (application password), whatever their status."""

    rest_base: str
    user: str
    app_password: str

    @classmethod
    def from_local_json(cls, content: Mapping[str, Any]) -> WordPressReader:
        """From a local.json document."""
        wp = content["wordpress"]
        return cls(wp["rest_base"], wp["admin_user"], wp["admin_app_password"])

    def find(self, external_id: str) -> list[dict[str, Any]]:
        """Every ai_event with this external_id."""
        response = httpx.get(
            f"{self.rest_base}/wp/v2/ai-events",
            params={"external_id": external_id, "status": "any", "per_page": 100},
            auth=(self.user, self.app_password),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events


def stack_fixtures(name: str, options: StackOptions) -> tuple[Any, ...]:
    """The module fixtures of a test module that drives its own local stack.

    Returns ``stack, local_file, cli, db, wordpress, no_faults`` for the module
    to bind to those names: one LocalStack on the session's emulators and
    WordPress, the ``local.json`` the command reads, the command, Firestore,
    the WordPress reader, and (autouse) a fault proxy cleared around each test.
    """

    @pytest.fixture(scope="module")
    def stack(
        emulators: Emulators,
        wordpress_server: WordPressServer,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[LocalStack]:
        local = LocalStack(
            tmp_path_factory.mktemp(name), options, emulators=emulators, wordpress=wordpress_server
        )
        local.start()
        yield local
        local.stop()

    @pytest.fixture(scope="module")
    def local_file(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
        path = tmp_path_factory.mktemp(f"{name}-local") / "local.json"
        path.write_text(json.dumps(local_json(stack)))
        return path

    @pytest.fixture(scope="module")
    def cli(local_file: Path) -> Cli:
        return Cli(local_file)

    @pytest.fixture(scope="module")
    def db(stack: LocalStack) -> firestore.Client:
        return firestore.Client(project=options.project)

    @pytest.fixture(scope="module")
    def wordpress(local_file: Path) -> WordPressReader:
        return WordPressReader.from_local_json(json.loads(local_file.read_text()))

    @pytest.fixture(autouse=True)
    def no_faults(stack: LocalStack) -> Iterator[None]:
        assert stack.proxy is not None
        stack.proxy.clear()
        yield
        stack.proxy.clear()

    return stack, local_file, cli, db, wordpress, no_faults
