"""Rotating a provider secret: the Secret Manager path with a fake client, and the local file.

The fake (shared with tests/unit/test_secrets.py) implements the four calls the
adapters make over an in-memory store of versions, so these tests run the real
SecretManagerValues/SecretManagerWriter and the real ``hookpress secrets rotate``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from hookpress.backends.secrets import (
    FileSecretWriter,
    FileValues,
    SecretManagerValues,
    SecretManagerWriter,
)
from hookpress.cli import ExitCode, main
from hookpress.ops import rotation
from hookpress.ops.target import EMULATOR_VARIABLES, load_cloud, load_local
from tests.unit.test_secrets import FakeSecretManager

PARENT = "projects/acme/secrets/hookpress-source-github"


@pytest.fixture(autouse=True)
def emulator_variables_restored(monkeypatch):
    for name in EMULATOR_VARIABLES:  # a deployed target removes them from the environment
        monkeypatch.setenv(name, os.environ.get(name, "unset"))


@pytest.fixture
def fake() -> FakeSecretManager:
    store = FakeSecretManager()
    store.versions[PARENT] = [(1, "ENABLED", "old-secret")]
    return store


def _enabled(fake: FakeSecretManager) -> list[str]:
    return [value for _, state, value in fake.versions[PARENT] if state == "ENABLED"]


def test_add_then_retire_with_secret_manager(fake):
    writer = SecretManagerWriter("acme", 5, client=fake)  # type: ignore[arg-type]
    values = SecretManagerValues("acme", 5, client=fake)  # type: ignore[arg-type]

    added = rotation.add_version(writer, values, "hookpress-source-github", "new-secret")
    assert added.added == "2"
    assert added.enabled == 2
    assert _enabled(fake) == ["old-secret", "new-secret"], "the old one stays accepted"

    with pytest.raises(ValueError, match="already the newest"):
        rotation.add_version(writer, values, "hookpress-source-github", "new-secret")
    with pytest.raises(ValueError, match="empty"):
        rotation.add_version(writer, values, "hookpress-source-github", "  ")

    retired = rotation.retire(writer, values, "hookpress-source-github")
    assert retired.retired == ["1"]
    assert retired.enabled == 1
    assert _enabled(fake) == ["new-secret"]
    assert [s for _, s, _ in fake.versions[PARENT]] == ["DISABLED", "ENABLED"], "never destroyed"

    again = rotation.retire(writer, values, "hookpress-source-github")
    assert again.retired == []


def test_retiring_a_secret_without_versions_is_refused(fake):
    writer = SecretManagerWriter("acme", 5, client=fake)  # type: ignore[arg-type]
    values = SecretManagerValues("acme", 5, client=fake)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no enabled version"):
        rotation.retire(writer, values, "hookpress-source-nothing")


def _cloud(fake):
    target = load_cloud(
        outputs_file=None,
        env={
            "HOOKPRESS_PROJECT": "acme",
            "HOOKPRESS_SOURCES": json.dumps({"github": {"scheme": "github"}}),
        },
    )
    return dataclasses.replace(target, secret_client=fake)


def test_the_command_rotates_a_deployed_stack_in_two_steps(fake, capsys):
    target = _cloud(fake)
    assert main(["secrets", "rotate", "github", "--json"], env={}, target=target) == ExitCode.OK
    first = json.loads(capsys.readouterr().out)
    assert first["secret"] == "hookpress-source-github"
    assert first["added"] == "2"
    assert first["enabled"] == 2
    generated = first["value"]
    assert len(generated) == 32, "a generated GitHub secret: 32 hex characters"
    assert _enabled(fake) == ["old-secret", generated]

    assert main(["secrets", "rotate", "github"], env={}, target=target) == ExitCode.OK
    out, err = capsys.readouterr()
    third = out.strip()
    assert third not in {generated, "old-secret"}
    assert "--retire" in err, "it says what to do next"

    assert main(["secrets", "rotate", "github", "--retire"], env={}, target=target) == ExitCode.OK
    assert "Disabled version(s) 2, 1" in capsys.readouterr().err
    assert _enabled(fake) == [third]


def test_the_command_reads_a_value_from_stdin_and_never_prints_it(fake, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_from_the_provider\n"))
    code = main(["secrets", "rotate", "github", "--value-file", "-"], env={}, target=_cloud(fake))
    assert code == ExitCode.OK
    out, err = capsys.readouterr()
    assert "whsec_from_the_provider" not in out + err
    assert _enabled(fake) == ["old-secret", "whsec_from_the_provider"]


def test_secret_manager_down_is_exit_5(fake, capsys):
    fake.fail = True
    assert main(["secrets", "rotate", "github"], env={}, target=_cloud(fake)) == 5
    assert "secretmanager is unavailable" in capsys.readouterr().err


def test_the_local_stack_rotates_its_secrets_file_and_local_json(tmp_path, capsys):
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"hookpress-source-gh": ["old"]}))
    local = tmp_path / "local.json"
    local.write_text(
        json.dumps(
            {
                "project": "p",
                "ingress_url": "http://127.0.0.1:1",
                "sources": {"gh": {"scheme": "github", "secrets": ["old"]}},
                "emulators": {"pubsub": "h:1", "firestore": "h:2", "storage": "http://h:3"},
                "secrets_file": str(secrets_file),
            }
        )
    )
    target = load_local(local, env={})
    assert main(["secrets", "rotate", "gh", "--value", "new"], env={}, target=target) == 0
    assert FileValues(secrets_file).fetch("hookpress-source-gh") == ("new", "old")
    assert json.loads(local.read_text())["sources"]["gh"]["secrets"] == ["new", "old"]
    assert oct(local.stat().st_mode & 0o777) == "0o600"

    assert main(["secrets", "rotate", "gh", "--retire"], env={}, target=target) == 0
    assert FileSecretWriter(secrets_file).fetch("hookpress-source-gh") == ("new",)
    assert json.loads(local.read_text())["sources"]["gh"]["secrets"] == ["new"]
    capsys.readouterr()
