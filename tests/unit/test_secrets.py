"""The secret cache: TTL, rotation without redeploy, stale-on-error, bounded refreshes."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest

from hookpress.backends import BackendError
from hookpress.backends.secrets import CachedSecrets, EnvValues, FileValues
from tests.secretmanager_fake import (
    ERRORS,
    BrokenSecretManager,
    FakeSecretManager,
    secret_manager_errors,
)


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


# -- every way Secret Manager fails is a BackendError (503), never an exception (500) ------


@pytest.mark.parametrize("where", ["list", "paging", "access"])
@pytest.mark.parametrize("error", ERRORS)
def test_each_secret_manager_error_is_a_backend_error(error: str, where: str):
    from hookpress.backends.secrets import SecretManagerValues, SecretManagerWriter

    fake = BrokenSecretManager(secret_manager_errors()[error], where)
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 5, client=fake).fetch("s")  # type: ignore[arg-type]
    assert (info.value.backend, info.value.detail) == ("secretmanager", error)
    writer = SecretManagerWriter("p", 5, client=fake)  # type: ignore[arg-type]
    with pytest.raises(BackendError):
        writer.add_version("s", "new")
    with pytest.raises(BackendError):
        writer.disable_older("s", keep=1)


@pytest.mark.parametrize("error", ERRORS)
def test_the_cache_serves_stale_values_or_raises_a_backend_error(error: str):
    from hookpress.backends.secrets import SecretManagerValues

    fake = BrokenSecretManager(secret_manager_errors()[error], "none")
    clock = Clock()
    cached = CachedSecrets(
        SecretManagerValues("p", 5, client=fake),  # type: ignore[arg-type]
        ttl_s=300,
        min_refresh_interval_s=30,
        clock=clock,
    )
    assert cached.get("s") == ("v2", "v1")
    fake.where = "access"
    clock.t += 301
    assert cached.get("s") == ("v2", "v1")  # stale, served
    cold = CachedSecrets(
        SecretManagerValues("p", 5, client=fake),  # type: ignore[arg-type]
        ttl_s=300,
        min_refresh_interval_s=30,
        clock=clock,
    )
    with pytest.raises(BackendError):
        cold.get("s")


def test_an_undecodable_secret_is_a_backend_error():
    from hookpress.backends.secrets import SecretManagerValues

    class Latin1(FakeSecretManager):
        def access_secret_version(self, request: dict, timeout: float, retry: object = None):
            from types import SimpleNamespace

            return SimpleNamespace(payload=SimpleNamespace(data=b"\xff\xfe"))

    fake = Latin1()
    fake.versions["projects/p/secrets/s"] = [(1, "ENABLED", "x")]
    with pytest.raises(BackendError):
        SecretManagerValues("p", 5, client=fake).fetch("s")  # type: ignore[arg-type]


def test_no_credentials_when_the_client_is_built_is_a_backend_error(monkeypatch, tmp_path):
    """google.auth.default() raises DefaultCredentialsError inside the client's constructor."""
    from hookpress.backends.secrets import SecretManagerValues

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 5).fetch("s")
    assert info.value.detail == "DefaultCredentialsError"


class _FailingCredentials:
    """Credentials whose token refresh fails, as on a broken metadata server."""

    @staticmethod
    def make(error: Exception) -> Any:
        from google.auth import credentials

        class Failing(credentials.Credentials):  # type: ignore[misc]
            def refresh(self, request: Any) -> None:
                raise error

        return Failing()


@pytest.mark.parametrize("error", ["RefreshError", "TransportError"])
def test_a_failed_token_refresh_is_a_backend_error(error: str):
    """Off Cloud Run the token is google-auth's: its refresh failing is a BackendError too."""
    from hookpress.backends._auth import AccessTokens
    from hookpress.backends._rest import Endpoint
    from hookpress.backends.secrets import SecretManagerREST, SecretManagerValues

    tokens = AccessTokens(credentials=_FailingCredentials.make(secret_manager_errors()[error]))
    client = SecretManagerREST(Endpoint("secretmanager", "http://127.0.0.1:9", 2, tokens))
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 2, client=client).fetch("s")
    assert (info.value.backend, info.value.detail) == ("auth", error)


# -- no traffic-driven storm of Secret Manager reads ------------------------------------------


def test_bad_signatures_cannot_drive_reads_while_the_store_is_down():
    """The bug: a failed read back-dated the cache, so every bad signature re-read."""
    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    secrets.get("s")
    values.fail = True
    clock.t += 301  # expired: this read fails and the stale value is served
    assert secrets.get("s") == ("a",)
    calls = values.calls
    for _ in range(1000):
        assert secrets.refresh_after_failure("s") is None
        assert secrets.get("s") == ("a",)
    assert values.calls == calls  # not one more read from a thousand bad signatures


def test_refresh_after_failure_is_keyed_on_the_last_attempt_not_the_cache_age():
    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    secrets.get("s")
    clock.t += 100  # the cache is 100 s old, well past the 30 s interval
    values.fail = True
    assert secrets.refresh_after_failure("s") is None  # read (failed): nothing new
    assert values.calls == 2
    clock.t += 29
    assert secrets.refresh_after_failure("s") is None
    assert values.calls == 2  # 29 s after the last attempt: no read
    values.fail = False
    values.values = ("b", "a")
    clock.t += 1
    assert secrets.refresh_after_failure("s") == ("b", "a")
    assert values.calls == 3


def test_a_cold_instance_backs_off_while_the_store_is_down():
    """Nothing cached: each request would read. Reads back off 1, 2, 4 … 30 s instead."""
    values, clock = Values(), Clock()
    values.fail = True
    secrets = cache(values, clock)
    for _ in range(600 * 10):  # ten minutes at ten requests a second
        with pytest.raises(BackendError):
            secrets.get("s")
        secrets_refresh = secrets.refresh_after_failure  # a bad signature cannot add reads
        with contextlib.suppress(BackendError):
            secrets_refresh("s")
        clock.t += 0.1
    # 1+2+4+8+16 s of back-off, then one read per 30 s
    assert values.calls <= 6 + 600 // 30
    values.fail = False
    values.values = ("a",)
    clock.t += 30
    assert secrets.get("s") == ("a",)  # back within one interval


class SlowValues(Values):
    """A store whose read waits until released: a prefetch still on the network."""

    def __init__(self, *values: str) -> None:
        super().__init__(*values)
        self.reading = threading.Event()
        self.release = threading.Event()

    def fetch(self, name: str) -> tuple[str, ...]:
        self.reading.set()
        assert self.release.wait(10)
        return super().fetch(name)


def test_a_get_during_a_prefetch_waits_for_it_instead_of_reading_again():
    values, clock = SlowValues("a"), Clock()
    secrets = cache(values, clock)
    prefetch = secrets.prefetch("s")
    assert values.reading.wait(10)
    got: list[tuple[str, ...]] = []
    getter = threading.Thread(target=lambda: got.append(secrets.get("s")))
    getter.start()
    getter.join(0.2)
    assert getter.is_alive()  # waiting on the prefetch's read
    values.release.set()
    getter.join(10)
    prefetch.join(10)
    assert got == [("a",)]
    assert values.calls == 1


def test_a_failed_prefetch_is_kept_and_backed_off_like_any_failed_read():
    values, clock = Values(), Clock()
    values.fail = True
    secrets = cache(values, clock)
    secrets.prefetch("s").join(10)  # nothing escapes the thread
    with pytest.raises(BackendError):
        secrets.get("s")  # within the back-off: the prefetch's failure, no second read
    assert values.calls == 1
    values.fail, values.values = False, ("a",)
    clock.t += 1
    assert secrets.get("s") == ("a",)
    assert values.calls == 2


def test_warm_readies_secret_manager_and_nothing_else(tmp_path):
    # the file and the environment have nothing to warm; Secret Manager's client does
    assert cache(Values("a"), Clock()).warm() == []
    file_values = CachedSecrets(
        FileValues(tmp_path / "secrets.json"), ttl_s=300, min_refresh_interval_s=30
    )
    assert file_values.warm() == []
    assert CachedSecrets(EnvValues({}), ttl_s=300, min_refresh_interval_s=30).warm() == []


def test_with_no_thread_to_be_had_the_prefetch_is_left_to_the_first_get(monkeypatch):
    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    values, clock = Values("a"), Clock()
    secrets = cache(values, clock)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert secrets.prefetch("s") is None  # nothing raised into the instance's build
    monkeypatch.undo()
    assert values.calls == 0
    assert secrets.get("s") == ("a",)
    assert values.calls == 1
