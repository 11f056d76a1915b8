"""Pulumi.yaml and the dev stack's config: the program accepts them, no secret is in clear."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
import yaml
from infra_harness import FUNCTIONS, REPO, Recorder, run_program

from infra import archive
from infra.config import load


def _stack_config(path: Path) -> dict[str, str]:
    """Stack YAML config as the language host hands it over: objects as JSON strings."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def test_project_file_points_at_the_infra_program() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "hookpress"
    assert project["runtime"]["name"] == "python"
    assert project["main"].rstrip("/") == "infra"
    assert (REPO / "infra" / "__main__.py").is_file()


def test_dev_stack_has_no_secret_in_clear() -> None:
    raw = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]
    assert not [k for k, v in raw.items() if isinstance(v, dict) and "secure" in v]
    for key in ("hookpress:wpAppPassword", "hookpress:sourceSecrets"):
        assert key not in raw
    text = (REPO / "Pulumi.dev.yaml").read_text()
    assert "whsec_" not in text


def test_dev_stack_config_is_valid() -> None:
    pulumi.runtime.set_all_config(_stack_config(REPO / "Pulumi.dev.yaml"), [])
    settings = load()
    assert settings.project == "hookpress-dev"
    assert {s.name for s in settings.sources} == {"stripe", "github", "openai", "smoke"}
    assert settings.manage_secret_values is False


def test_dev_stack_builds(functions_root: Path) -> None:
    graph = run_program(_stack_config(REPO / "Pulumi.dev.yaml"), functions_root)
    service = graph.one("cloudfunctionsv2/function:Function", name="hookpress-deliver").get(
        "serviceConfig"
    )
    assert service["maxInstanceCount"] * service["maxInstanceRequestConcurrency"] == 4
    # Only the smoke source's generated secret; the others are added with gcloud.
    versions = graph.of("secretmanager/secretVersion:SecretVersion")
    assert [v.name for v in versions] == ["secrets-source-smoke-version"]
    assert not graph.engine.duplicate_urns


def test_program_runs_the_way_pulumi_runs_it() -> None:
    """``runpy.run_path('infra', run_name='__main__')`` as the Python language host does.

    Against the repository's real functions/ folder: either the whole stack is
    declared, or, while a function folder is still missing, the program stops with
    one sentence naming the missing file (never a stack trace from deep inside).
    """
    infra_dir = str(REPO / "infra")
    pulumi.runtime.set_all_config(_stack_config(REPO / "Pulumi.dev.yaml"), [])
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="hookpress", stack="dev", preview=False)
    sys.path.insert(0, infra_dir)  # what runpy does for a directory
    outcome: list[BaseException] = []

    @pulumi.runtime.test
    def go() -> None:
        try:
            runpy.run_path(infra_dir, run_name="__main__")
        except archive.ArchiveError as exc:
            outcome.append(exc)

    try:
        go()
        # The program folder is not left first on sys.path, where infra/*.py would
        # shadow top-level modules of the same name.
        assert infra_dir not in sys.path
    finally:
        if infra_dir in sys.path:
            sys.path.remove(infra_dir)
    if outcome:
        message = str(outcome[0])
        assert "is missing: every function folder needs main.py and requirements.txt" in message
        assert message.startswith(str(REPO / "functions"))
    else:
        functions = {
            r.get("name") for r in recorder.resources if r.type.endswith("function:Function")
        }
        assert functions == {f"hookpress-{name}" for name in FUNCTIONS}
