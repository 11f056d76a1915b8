"""Fixtures shared by every tier: the repository layout and the real emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpress.local.emulators import Emulators, emulators_in_env

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Pub/Sub, Firestore and GCS emulators for the whole session.

    A missing or broken emulator fails here with the emulator's own log: the
    integration tier never skips.
    """
    with emulators_in_env(tmp_path_factory.mktemp("emulators")) as stack:
        yield stack
