"""docs/deploy.md can be followed on a fresh project: its commands, run through the program.

The ``pulumi config set`` lines of the guide (a new stack, then Option B's
secret values) are parsed as the Pulumi CLI would store them and the program
runs on the result; the cost section's assumptions are the defaults; the
page has the first-deploy and tear-down sections and ends with the smoke check.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pulumi
from infra_harness import REPO, run_program

from infra.config import load

DOC = (REPO / "docs" / "deploy.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def _commands(text: str) -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = [line.split(" #")[0] for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("pulumi config set")]


def _set_path(config: dict[str, Any], path: str, value: str) -> None:
    namespace, _, rest = path.partition(":")
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", rest)
    key = f"{namespace}:{parts[0]}"
    node: Any = config.setdefault(key, [] if parts[1:2] and parts[1].startswith("[") else {})
    for part, following in zip(parts[1:], [*parts[2:], None], strict=True):
        is_last = following is None
        child: Any = value if is_last else [] if following.startswith("[") else {}
        if part.startswith("["):
            index = int(part[1:-1])
            while len(node) <= index:
                node.append(None)
            node[index] = child if is_last else node[index] or child
            node = node[index]
        else:
            node = node.setdefault(part, child) if not is_last else node.__setitem__(part, child)


def config_from(commands: list[list[str]]) -> tuple[dict[str, str], list[str]]:
    """What ``pulumi config set`` would store: plain values and objects (as JSON), secret keys."""
    config: dict[str, Any] = {}
    secrets: list[str] = []
    for argv in commands:
        args = argv[3:]
        secret, path = "--secret" in args, "--path" in args
        key, value = [a for a in args if not a.startswith("--")]
        top = key.split(".")[0].split("[")[0]
        if secret:
            secrets.append(top)
        if path:
            _set_path(config, key, value)
        else:
            config[key] = value
    stored = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return stored, sorted(set(secrets))


def test_a_new_stack_with_option_b_runs_through_the_program(functions_root: Path) -> None:
    create = _commands(_section("Create a stack"))
    option_b = _commands(_section("Secret values"))
    prod = create[create.index(next(c for c in create if "acme-hookpress-prod" in c)) :]
    config, secrets = config_from(prod + option_b)
    config["gcp:region"] = config.get("gcp:region", "europe-west1")
    sources = json.loads(config["hookpress:sources"])
    values = json.loads(config["hookpress:sourceSecrets"])
    # Option B names a secret for every source the guide configures.
    assert set(values) == set(sources), (sorted(sources), sorted(values))
    assert secrets == ["hookpress:sourceSecrets", "hookpress:wpAppPassword"]
    graph = run_program(config, functions_root, secret_keys=secrets)
    assert not graph.engine.duplicate_urns
    versions = {r.name for r in graph.of("secretmanager/secretVersion:SecretVersion")}
    assert versions == {
        *(f"secrets-source-{name}-version" for name in sources),
        "secrets-source-smoke-version",
        "secrets-wp-app-password-version",
    }


def test_the_cost_assumptions_are_the_defaults() -> None:
    pulumi.runtime.set_all_config(
        {
            "gcp:project": "p",
            "gcp:region": "us-central1",
            "hookpress:sources": json.dumps({"s": {"scheme": "stripe"}}),
            "hookpress:wpBaseUrl": "https://wp.example.com/wp-json",
            "hookpress:wpUser": "u",
        },
        [],
    )
    s = load()
    cost = " ".join(_section("Cost per million events").split())
    concurrency = int(re.search(r"default ingress concurrency of (\d+)", cost)[1])  # type: ignore[index]
    assert concurrency == s.ingress.sizing.concurrency
    assert f"`ingressCpu` {s.ingress.sizing.cpu}" in cost
    assert f"`ingressMemory` {s.ingress.sizing.memory}" in cost
    assert f"`deliverCpu` {s.deliver.sizing.cpu}" in cost
    assert f"`deliverMemory` {s.deliver.sizing.memory}" in cost
    assert "`egressPath connector`, the default" in cost
    assert s.network.egress_path == "connector"


def test_the_guide_covers_first_deploy_and_tear_down_and_ends_with_smoke() -> None:
    first = _section("First deploy")
    for topic in ("iamSettleS", "metricSettleS", "wpPasswordFirstRotation", "projectNumber"):
        assert topic in DOC, topic
    assert "time.Sleep" in first
    tear_down = _section("Tear down")
    assert "pulumi destroy" in tear_down
    assert "unprotect" in tear_down
    last = DOC[DOC.rindex("\n## ") :]
    assert last.startswith("\n## Check the deployment: hookpress smoke")
    assert "hookpress smoke --stack-outputs" in last


def test_every_google_fact_the_program_relies_on_is_cited() -> None:
    for url in (
        "https://cloud.google.com/run/docs/securing/ingress",
        "https://cloud.google.com/run/docs/triggering/https-request#deterministic",
        "https://cloud.google.com/run/docs/configuring/custom-audiences",
        "https://cloud.google.com/functions/docs/securing/build-custom-sa",
        "https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#limitations",
        "https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#direct-vpc-ip-allocation",
        "https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets#rotation",
        "https://cloud.google.com/iam/docs/access-change-propagation",
    ):
        assert url in DOC, url
