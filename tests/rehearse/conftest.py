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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_gcp.*")


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    rehearsed = Rehearsal(tmp_path_factory.mktemp("rehearsal"))
    rehearsed.start()
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
