"""Deployed code never imports what its archive leaves out, not even lazily.

Function archives hold ``functions/<name>/`` and the core minus ``hookpress.local``,
``hookpress.cli`` and ``hookpress.ops`` (infra/archive.py). Ruff's TID251 (pyproject.toml)
refuses such an import at lint time; this test walks every deployed module's syntax
tree as well, including imports inside functions and ``importlib.import_module`` or
``__import__`` calls with a literal name, which no lint rule reads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
LEFT_OUT = ("hookpress.local", "hookpress.cli", "hookpress.ops")


def deployed_modules() -> list[Path]:
    core = [
        path
        for path in sorted((FUNCTIONS / "hookpress").rglob("*.py"))
        if path.relative_to(FUNCTIONS / "hookpress").parts[0] not in {"local", "cli", "ops"}
    ]
    entry_points = sorted(FUNCTIONS.glob("*/main.py"))
    return entry_points + core


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(FUNCTIONS).with_suffix("").parts[:-1])


def imported_names(source: str, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import the module could make, wherever it stands."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names += [(node.lineno, base)]
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                names.append((node.lineno, str(first.value)))
    return names


def left_out(name: str) -> bool:
    return any(name == banned or name.startswith(f"{banned}.") for banned in LEFT_OUT)


def test_the_walk_sees_the_deployed_tree() -> None:
    modules = {p.relative_to(FUNCTIONS).as_posix() for p in deployed_modules()}
    assert {"ingress/main.py", "deliver/main.py", "hookpress/settings.py"} <= modules
    assert not [m for m in modules if m.startswith(("hookpress/local/", "hookpress/ops/"))]


@pytest.mark.parametrize(
    "source",
    [
        "from hookpress.local import stack\n",
        "def f():\n    import hookpress.cli\n",
        "def f():\n    from hookpress import ops\n",
        "from .ops import replay\n",
        "import importlib\nimportlib.import_module('hookpress.local.stack')\n",
    ],
)
def test_the_walk_finds_an_import_wherever_it_hides(source: str) -> None:
    # As if it stood in a deployed module of the core, so the relative import resolves.
    assert [name for _, name in imported_names(source, "hookpress") if left_out(name)]


@pytest.mark.parametrize(
    "path", deployed_modules(), ids=lambda p: p.relative_to(FUNCTIONS).as_posix()
)
def test_deployed_module_imports_nothing_left_out_of_the_archive(path: Path) -> None:
    names = imported_names(path.read_text(), package_of(path))
    found = [f"line {line}: {name}" for line, name in names if left_out(name)]
    assert not found, f"{path.relative_to(ROOT)} imports what its archive leaves out: {found}"
