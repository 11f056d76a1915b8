"""The rehearsal fixture: one deployed configuration for the whole session (nox -s rehearse)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_INFRA = Path(__file__).resolve().parents[1] / "infra"
if str(_INFRA) not in sys.path:
    sys.path.insert(0, str(_INFRA))

from rehearsal import Rehearsal  # noqa: E402
from venvs import function_python  # noqa: E402

_TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which interpreter the function venvs use, and how long start-up took (seconds)."""
    if _TIMINGS:
        terminalreporter.write_line(
            f"rehearse: function venvs on {function_python()}; start-up {_TIMINGS}"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_gcp.*")


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    rehearsed = Rehearsal(tmp_path_factory.mktemp("rehearsal"))
    rehearsed.start()
    _TIMINGS.update(rehearsed.timings)
    saved = {
        k: os.environ.get(k)
        for k in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    }
    assert rehearsed.emulators is not None
    os.environ.update({k: rehearsed.emulators.env[k] for k in saved})
    try:
        yield rehearsed
    finally:
        rehearsed.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
