"""The emulators themselves: how the local stack runs the Google Cloud stand-ins."""

from __future__ import annotations

import pytest

from hookpress.local import emulators as emulators_module
from hookpress.local.emulators import JVM_OPTIONS, Emulators


def test_the_jvm_emulators_run_with_the_first_tier_compiler_and_serial_gc(
    emulators: Emulators,
) -> None:
    # The JVM says on stderr (the emulator's log) which tool options it applied; an
    # option it did not know would have stopped it from starting at all.
    for emulator in (emulators.pubsub, emulators.firestore):
        assert emulator is not None
        log = emulator.log_path.read_text(errors="replace")
        assert f"Picked up JAVA_TOOL_OPTIONS: {JVM_OPTIONS}" in log, emulator.name


def test_options_already_in_the_environment_come_after_ours_so_they_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Xmx512m -XX:TieredStopAtLevel=4")
    env = emulators_module._jvm_env()
    assert env == {"JAVA_TOOL_OPTIONS": f"{JVM_OPTIONS} -Xmx512m -XX:TieredStopAtLevel=4"}
    monkeypatch.delenv("JAVA_TOOL_OPTIONS")
    assert emulators_module._jvm_env() == {"JAVA_TOOL_OPTIONS": JVM_OPTIONS}
