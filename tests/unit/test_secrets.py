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


class FakeSecretManager:
    """The four Secret Manager calls the adapters make, over an in-memory store."""

    def __init__(self) -> None:
        self.versions: dict[str, list[tuple[int, str, str]]] = {}  # secret -> (id, state, value)
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            from google.api_core import exceptions as gexc

            raise gexc.ServiceUnavailable("down")

    def list_secret_versions(self, request: dict, timeout: float) -> list:
        self._check()
        from types import SimpleNamespace

        parent = request["parent"]
        assert request["filter"] == "state:ENABLED"
        return [
            SimpleNamespace(name=f"{parent}/versions/{v}")
            for v, state, _ in self.versions.get(parent, [])
            if state == "ENABLED"
        ]

    def access_secret_version(self, request: dict, timeout: float):
        self._check()
        from types import SimpleNamespace

        parent, _, version = request["name"].rpartition("/versions/")
        value = next(val for v, _, val in self.versions[parent] if str(v) == version)
        return SimpleNamespace(payload=SimpleNamespace(data=value.encode()))

    def add_secret_version(self, request: dict, timeout: float):
        self._check()
        from types import SimpleNamespace

        parent = request["parent"]
        versions = self.versions.setdefault(parent, [])
        version = len(versions) + 1
        versions.append((version, "ENABLED", request["payload"]["data"].decode()))
        return SimpleNamespace(name=f"{parent}/versions/{version}")

    def disable_secret_version(self, request: dict, timeout: float) -> None:
        self._check()
        parent, _, version = request["name"].rpartition("/versions/")
        self.versions[parent] = [
            (v, "DISABLED" if str(v) == version else s, val) for v, s, val in self.versions[parent]
        ]


def test_secret_manager_values_are_every_enabled_version_newest_first():
    from hookpress.backends.secrets import SecretManagerValues, SecretManagerWriter

    fake = FakeSecretManager()
    writer = SecretManagerWriter("p", 5, client=fake)  # type: ignore[arg-type]
    for value in ("v1", "v2", "v3"):
        writer.add_version("s", value)
    for i in range(4, 11):  # ids past 9 sort as numbers, not strings
        writer.add_version("s", f"v{i}")
    values = SecretManagerValues("p", 5, client=fake)  # type: ignore[arg-type]
    assert values.fetch("s")[:3] == ("v10", "v9", "v8")
    assert writer.disable_older("s", keep=2) == [str(i) for i in range(8, 0, -1)]
    assert values.fetch("s") == ("v10", "v9")
    fake.fail = True
    with pytest.raises(BackendError):
        values.fetch("s")
    with pytest.raises(BackendError):
        writer.add_version("s", "x")


def test_file_writer_adds_newest_first_and_retires(tmp_path):
    from hookpress.backends.secrets import FileSecretWriter

    path = tmp_path / "s.json"
    path.write_text(json.dumps({"s": ["a"]}))
    writer = FileSecretWriter(path)
    writer.add_version("s", "b")
    assert writer.fetch("s") == ("b", "a")
    writer.disable_older("s", keep=1)
    assert writer.fetch("s") == ("b",)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
