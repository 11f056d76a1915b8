"""Fixtures shared by every tier: the repository layout and the real emulators."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpress.local.emulators import Emulators

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Pub/Sub, Firestore and GCS emulators for the whole session.

    A missing or broken emulator fails here with the emulator's own log: the
    integration tier never skips.
    """
    stack = Emulators(tmp_path_factory.mktemp("emulators")).start()
    saved = {k: os.environ.get(k) for k in stack.env}
    os.environ.update(stack.env)
    try:
        yield stack
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
