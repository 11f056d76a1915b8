"""The secret cache: TTL, rotation without redeploy, stale-on-error, bounded refreshes."""

from __future__ import annotations

import json

import pytest

from hookpress.backends import BackendError
from hookpress.backends.secrets import CachedSecrets, EnvValues, FileValues


class Values:
    def __init__(self, *values: str) -> None:
        self.values: tuple[str, ...] = values
        self.calls = 0
        self.fail = False

    def fetch(self, name: str) -> tuple[str, ...]:
        self.calls += 1
        if self.fail:
            raise BackendError("secretmanager", "Unavailable")
        return self.values


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def cache(values: Values, clock: Clock) -> CachedSecrets:
    return CachedSecrets(values, ttl_s=300, min_refresh_interval_s=30, clock=clock)


def test_served_from_cache_within_the_ttl_then_refreshed():
    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    assert secrets.get("s") == ("a",)
    clock.t += 299
    values.values = ("b", "a")
    assert secrets.get("s") == ("a",)
    assert values.calls == 1
    clock.t += 2
    assert secrets.get("s") == ("b", "a")
    assert values.calls == 2


def test_stale_values_are_served_when_the_backend_fails():
    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    secrets.get("s")
    values.fail = True
    clock.t += 400
    assert secrets.get("s") == ("a",)
    assert secrets.get("s") == ("a",)
    assert values.calls == 2  # not retried on every request


def test_with_nothing_cached_a_backend_failure_propagates():
    values = Values()
    values.fail = True
    with pytest.raises(BackendError):
        cache(values, Clock()).get("s")


def test_refresh_after_failure_is_rate_limited_and_reports_new_values():
    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    secrets.get("s")
    values.values = ("b", "a")
    assert secrets.refresh_after_failure("s") is None  # too soon
    clock.t += 31
    assert secrets.refresh_after_failure("s") == ("b", "a")
    clock.t += 31
    assert secrets.refresh_after_failure("s") is None  # unchanged
    assert secrets.get("s") == ("b", "a")


def test_file_values_are_re_read(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"s": ["x", "y"], "one": "z"}))
    values = FileValues(path)
    assert values.fetch("s") == ("x", "y")
    assert values.fetch("one") == ("z",)
    assert values.fetch("missing") == ()
    path.write_text(json.dumps({"s": ["w"]}))
    assert values.fetch("s") == ("w",)
    path.write_text("{")
    with pytest.raises(BackendError):
        values.fetch("s")


def test_env_values():
    env = {"HOOKPRESS_SECRET_HOOKPRESS_SOURCE_A": '["n", "o"]', "HOOKPRESS_SECRET_B": "plain"}
    values = EnvValues(env)
    assert values.fetch("hookpress-source-a") == ("n", "o")
    assert values.fetch("b") == ("plain",)
    assert values.fetch("c") == ()
