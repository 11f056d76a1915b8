"""The emulators themselves: how the local stack runs the Google Cloud stand-ins."""

from __future__ import annotations

import statistics
import time

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


def test_a_write_into_a_full_bucket_costs_what_one_into_an_empty_bucket_does(
    emulators: Emulators,
) -> None:
    # GCS puts no limit on the number of objects in a bucket
    # (https://cloud.google.com/storage/quotas#objects), and a write's latency does not grow
    # with their number. fake-gcs-server's memory backend scans the bucket's list of objects
    # on every write (measured: a p50 of 0.8 ms into an empty bucket, 9 ms after 5,000
    # objects), so a benchmark's later figures paid for its earlier ones; the filesystem
    # backend it runs with keeps the cost flat. Measured as a ratio within this run.
    from hookpress.backends.gcs import RawStore

    bucket = "hookpress-flat-writes"
    emulators_module.ensure_bucket(emulators.project, bucket)
    raw = RawStore(emulators.project, bucket, 10)
    window, total = 200, 3_000

    def timed(first: int) -> float:
        times = []
        for i in range(first, first + window):
            started = time.perf_counter()
            assert raw.put(f"raw/flat/2026/12/03/{i:064d}.json", b"x" * 600, {"scheme": "x"})
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    empty = timed(0)
    for i in range(window, total - window):
        raw.put(f"raw/flat/2026/12/03/{i:064d}.json", b"x" * 600, {"scheme": "x"})
    full = timed(total - window)
    # The memory backend failed it at 10 x; the filesystem backend measures about 1 x.
    assert full < 2.5 * empty, (empty, full)
