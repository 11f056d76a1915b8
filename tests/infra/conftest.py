"""Fixtures of the infra tests; the harness itself lives in ``infra_harness``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from infra_harness import (
    BASE_CONFIG,
    FUNCTIONS,
    REPO,
    SECRET_KEYS,
    Graph,
    run_program,
    write_function,
)


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_gcp warns about its own deprecated aliases as the package is imported.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_gcp.*")


@pytest.fixture(scope="session")
def functions_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A functions/ tree for the graph tests: the real core plus small fixture functions.

    The resource graph does not depend on what the functions do, so the graph
    tests need not wait for every function folder to exist in the repository.
    """
    root = tmp_path_factory.mktemp("functions")
    shutil.copytree(
        REPO / "functions" / "hookpress",
        root / "hookpress",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in FUNCTIONS:
        write_function(root / name, name)
    return root


@pytest.fixture(scope="session")
def graph(functions_root: Path) -> Graph:
    """The stack with the base configuration."""
    return run_program(BASE_CONFIG, functions_root, secret_keys=SECRET_KEYS)


@pytest.fixture
def run(functions_root: Path) -> Callable[..., Graph]:
    """Run the program with the base configuration plus overrides."""

    def _run(**overrides: str) -> Graph:
        config = {**BASE_CONFIG, **{f"hookpress:{k}": v for k, v in overrides.items()}}
        return run_program(config, functions_root, secret_keys=SECRET_KEYS)

    return _run
