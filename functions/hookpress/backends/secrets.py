"""Signing secrets and the WordPress application password.

``CachedSecrets`` holds every *enabled* version of a secret for a TTL, so a
rotation (a new version added, the old one disabled later) needs no redeploy.
Where the values come from is chosen explicitly by configuration:

- ``SecretManagerValues``: Secret Manager, the only source in the cloud;
- ``FileValues``: a local JSON file ``{"secret-id": ["value", ...]}``, re-read
  on refresh (the local stack rotates by rewriting it);
- ``EnvValues``: ``HOOKPRESS_SECRET_<ID>`` variables (id upper-cased, ``-`` as
  ``_``), a JSON list or one plain value.

There is deliberately no fallback from one to another.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hookpress.backends._errors import BackendError
from hookpress.settings import SecretsConfig, SettingsError

if TYPE_CHECKING:
    from google.cloud.secretmanager import SecretManagerServiceClient

__all__ = [
    "CachedSecrets",
    "EnvValues",
    "FileSecretWriter",
    "FileValues",
    "SecretManagerValues",
    "SecretManagerWriter",
    "SecretValues",
    "SecretWriter",
    "build_secret_values",
    "build_secret_writer",
]


class SecretValues(Protocol):
    """Fetches every enabled value of a secret, newest first (uncached)."""

    def fetch(self, name: str) -> tuple[str, ...]:
        """Return the values; raise BackendError when the store cannot be read."""
        ...


class SecretManagerValues:
    """Secret Manager: list the ENABLED versions, access each."""

    def __init__(
        self, project: str, timeout_s: float, client: SecretManagerServiceClient | None = None
    ) -> None:
        self._project = project
        self._timeout = timeout_s
        self._client = client
        self._lock = threading.Lock()

    def _get_client(self) -> SecretManagerServiceClient:
        with self._lock:
            if self._client is None:
                from google.cloud import secretmanager

                self._client = secretmanager.SecretManagerServiceClient()
            return self._client

    def fetch(self, name: str) -> tuple[str, ...]:
        from google.api_core import exceptions as gexc

        client = self._get_client()
        parent = f"projects/{self._project}/secrets/{name}"
        try:
            versions = client.list_secret_versions(
                request={"parent": parent, "filter": "state:ENABLED"}, timeout=self._timeout
            )
            names = [v.name for v in versions]
            # Newest first: version ids are increasing integers.
            names.sort(key=lambda n: int(n.rsplit("/", 1)[1]), reverse=True)
            values = []
            for version in names:
                payload = client.access_secret_version(
                    request={"name": version}, timeout=self._timeout
                ).payload.data
                values.append(payload.decode("utf-8").strip())
        except gexc.GoogleAPICallError as exc:
            raise BackendError("secretmanager", type(exc).__name__) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackendError("secretmanager", type(exc).__name__) from None
        return tuple(v for v in values if v)


class FileValues:
    """A local JSON file of secret lists (the local stack's stand-in for Secret Manager)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def fetch(self, name: str) -> tuple[str, ...]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError("secrets-file", type(exc).__name__) from None
        value = data.get(name, []) if isinstance(data, dict) else []
        values = [value] if isinstance(value, str) else value
        return tuple(v for v in values if isinstance(v, str) and v)


class EnvValues:
    """Secrets from ``HOOKPRESS_SECRET_<ID>`` environment variables (local runs only)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)

    @staticmethod
    def variable(name: str) -> str:
        """The variable that holds secret ``name``."""
        return "HOOKPRESS_SECRET_" + name.upper().replace("-", "_")

    def fetch(self, name: str) -> tuple[str, ...]:
        raw = self._env.get(self.variable(name), "").strip()
        if not raw:
            return ()
        if raw.startswith("["):
            try:
                values = json.loads(raw)
            except ValueError:
                raise BackendError("secrets-env", "invalid JSON list") from None
            return tuple(v for v in values if isinstance(v, str) and v)
        return (raw,)


def build_secret_values(
    config: SecretsConfig, project: str, env: Mapping[str, str], timeout_s: float
) -> SecretValues:
    """The configured source of secret values."""
    if config.backend == "secretmanager":
        return SecretManagerValues(project, timeout_s)
    if config.backend == "file":
        if config.file is None:  # pragma: no cover - settings guarantee it
            raise SettingsError("HOOKPRESS_SECRETS_FILE is not set.")
        return FileValues(config.file)
    return EnvValues(env)


class CachedSecrets:
    """Every enabled value per secret, cached for ``ttl_s``; thread-safe.

    ``get`` serves from the cache and refreshes when it is older than the TTL.
    If a refresh fails and older values exist, they keep being served (a brief
    Secret Manager outage must not reject every webhook); with nothing cached
    the BackendError propagates. ``refresh_after_failure`` re-reads at most
    once per ``min_refresh_interval_s`` after a signature did not verify, so a
    rotation takes effect at once.
    """

    def __init__(
        self,
        values: SecretValues,
        *,
        ttl_s: float,
        min_refresh_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._values = values
        self._ttl = ttl_s
        self._min_refresh = min_refresh_interval_s
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _load(self, name: str) -> tuple[str, ...]:
        try:
            values = self._values.fetch(name)
        except BackendError:
            cached = self._cache.get(name)
            if cached is None:
                raise
            # Serve stale values, but try again after the minimum interval.
            self._cache[name] = (self._clock() - self._ttl + self._min_refresh, cached[1])
            return cached[1]
        self._cache[name] = (self._clock(), values)
        return values

    def get(self, name: str) -> tuple[str, ...]:
        """The enabled values of ``name``, newest first."""
        cached = self._cache.get(name)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        with self._lock_for(name):
            cached = self._cache.get(name)
            if cached is not None and self._clock() - cached[0] < self._ttl:
                return cached[1]
            return self._load(name)

    def refresh_after_failure(self, name: str) -> tuple[str, ...] | None:
        """Re-read ``name`` if the cache is older than the minimum interval; else None."""
        with self._lock_for(name):
            cached = self._cache.get(name)
            if cached is not None and self._clock() - cached[0] < self._min_refresh:
                return None
            before = cached[1] if cached else None
            values = self._load(name)
            return None if values == before else values


class SecretWriter(Protocol):
    """Adds and retires secret versions (rotation)."""

    def add_version(self, name: str, value: str) -> str:
        """Store ``value`` as the newest enabled version; return its version id."""
        ...

    def disable_older(self, name: str, keep: int = 1) -> list[str]:
        """Disable every enabled version but the ``keep`` newest; return what was disabled."""
        ...


class SecretManagerWriter(SecretManagerValues):
    """Secret Manager: add a version, disable old ones (never destroys: disabling is reversible)."""

    def add_version(self, name: str, value: str) -> str:
        from google.api_core import exceptions as gexc

        client = self._get_client()
        try:
            version = client.add_secret_version(
                request={
                    "parent": f"projects/{self._project}/secrets/{name}",
                    "payload": {"data": value.encode("utf-8")},
                },
                timeout=self._timeout,
            )
        except gexc.GoogleAPICallError as exc:
            raise BackendError("secretmanager", type(exc).__name__) from None
        return str(version.name.rsplit("/", 1)[1])

    def disable_older(self, name: str, keep: int = 1) -> list[str]:
        from google.api_core import exceptions as gexc

        client = self._get_client()
        parent = f"projects/{self._project}/secrets/{name}"
        try:
            names = [
                v.name
                for v in client.list_secret_versions(
                    request={"parent": parent, "filter": "state:ENABLED"}, timeout=self._timeout
                )
            ]
            names.sort(key=lambda n: int(n.rsplit("/", 1)[1]), reverse=True)
            for version in names[keep:]:
                client.disable_secret_version(request={"name": version}, timeout=self._timeout)
        except gexc.GoogleAPICallError as exc:
            raise BackendError("secretmanager", type(exc).__name__) from None
        return [n.rsplit("/", 1)[1] for n in names[keep:]]


class FileSecretWriter(FileValues):
    """The local secrets file: newest first; written atomically (readers never see half a file)."""

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError("secrets-file", type(exc).__name__) from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self._path.with_suffix(self._path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self._path)

    def add_version(self, name: str, value: str) -> str:
        data = self._load()
        current = data.get(name, [])
        values = [current] if isinstance(current, str) else list(current)
        data[name] = [value, *values]
        self._save(data)
        return str(len(data[name]))

    def disable_older(self, name: str, keep: int = 1) -> list[str]:
        data = self._load()
        values = data.get(name, [])
        values = [values] if isinstance(values, str) else list(values)
        data[name] = values[:keep]
        self._save(data)
        return [str(len(values) - i) for i in range(keep, len(values))]


def build_secret_writer(config: SecretsConfig, project: str, timeout_s: float) -> SecretWriter:
    """Where rotated secrets are written: Secret Manager, or the local file."""
    if config.backend == "secretmanager":
        return SecretManagerWriter(project, timeout_s)
    if config.backend == "file" and config.file is not None:
        return FileSecretWriter(config.file)
    raise SettingsError(
        "HOOKPRESS_SECRETS_BACKEND=env cannot store rotated secrets: use secretmanager or file."
    )
