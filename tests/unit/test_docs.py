"""The README documents every setting the code reads (a drift guard)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_environment_variable_the_functions_read_is_documented():
    core = ROOT / "functions" / "hookpress"
    settings = "".join((core / f).read_text() for f in ("settings.py", "config_rules.py"))
    names = set(re.findall(r'"((?:HOOKPRESS|PAUSE)_[A-Z_]+)"', settings))
    assert names, "no variables found: the pattern is stale"
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert missing == []


def test_every_pulumi_config_key_is_documented():
    config = "".join(p.read_text() for p in sorted((ROOT / "infra" / "config").glob("*.py")))
    keys = set(re.findall(r'\b(?:r|gcp)\.\w+\(\s*"([a-z][A-Za-z]+)"', config))
    keys |= set(re.findall(r'_\w+\(r, "([a-z][A-Za-z]+)"', config))
    keys |= set(re.findall(r'require_secret(?:_object)?\("([a-z][A-Za-z]+)"\)', config))
    assert {"wpBaseUrl", "ingressConcurrency", "project"} <= keys, "the pattern is stale"
    section = README[README.index("### Pulumi configuration") :]
    missing = sorted(k for k in keys if f"`{k}`" not in section and f"`gcp:{k}`" not in section)
    assert missing == []


def test_the_provider_table_lists_every_provider_with_its_scheme():
    from hookpress.providers import PROVIDERS

    section = README[README.index("### Providers and their signatures") :]
    section = section[: section.index("\n### ")]
    for name, provider in PROVIDERS.items():
        rows = [line for line in section.splitlines() if line.startswith(f"| `{name}` |")]
        assert len(rows) == 1, name
        assert f"| `{provider.scheme_name}` |" in rows[0], name
        if provider.oracle:
            assert provider.oracle.split(" ")[0] in rows[0], name


def test_the_request_map_names_every_core_module_and_only_paths_that_exist():
    """README's "Where a request goes" map matches the tree: nothing missing, nothing stale."""
    section = README[README.index("Where a request goes") :]
    block = section[section.index("```") + 3 :]
    block = block[: block.index("```")]
    paths = set(re.findall(r"((?:functions|wordpress|infra|bench|hookpress)/[\w/.]*)", block))
    core = {p.removeprefix("functions/") for p in paths if p.startswith("functions/hookpress/")}
    core |= {p for p in paths if p.startswith("hookpress/")}
    for path in paths:
        on_disk = ROOT / path if not path.startswith("hookpress/") else ROOT / "functions" / path
        assert on_disk.exists(), f"the map names {path}, which does not exist"
    for entry in sorted((ROOT / "functions" / "hookpress").iterdir()):
        if entry.name.startswith(("_", ".")) or entry.suffix not in {".py", ""}:
            continue
        named = f"hookpress/{entry.name}" + ("/" if entry.is_dir() else "")
        assert any(p == named or p.startswith(named) for p in core), f"the map skips {named}"
    for package in ("ingress", "deliver"):
        assert f"hookpress/{package}/__init__.py" in core, f"the map skips {package}/__init__.py"
