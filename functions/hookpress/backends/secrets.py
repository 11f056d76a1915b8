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

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hookpress.backends._errors import BackendError
from hookpress.instance import Lazy
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


@contextlib.contextmanager
def _secret_manager_errors() -> Iterator[None]:
    """Turn every way a Secret Manager call can fail into BackendError.

    ``GoogleAPIError`` covers each call's error and ``RetryError`` (a retry
    that gave up); ``GoogleAuthError`` covers a token refresh that failed
    (``RefreshError``, ``TransportError``) and missing credentials when the
    client is built (``DefaultCredentialsError``); ``OSError`` a socket
    timeout; ``ValueError`` a payload that is not UTF-8 or a version name
    that is not a number. Anything else escaping would be a 500.
    """
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    try:
        yield
    except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError, ValueError) as exc:
        raise BackendError("secretmanager", type(exc).__name__) from None


def _client() -> SecretManagerServiceClient:
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient()


class SecretManagerValues:
    """Secret Manager: list the ENABLED versions, access each."""

    def __init__(
        self, project: str, timeout_s: float, client: SecretManagerServiceClient | None = None
    ) -> None:
        self._project = project
        self._timeout = timeout_s
        self._client = Lazy(_client, client)

    def _access_retry(self) -> Any:
        """The client's own retry of ``access_secret_version``, bounded by our timeout.

        Its default runs for 60 s whatever ``timeout`` says (measured: an
        unreachable endpoint answered RetryError after 56 s with timeout=2); a
        request waiting on a secret must give up within the backend timeout.
        The other calls have no default retry, and get none here.
        """
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        return Retry(
            initial=0.2,
            predicate=if_exception_type(gexc.ResourceExhausted, gexc.ServiceUnavailable),
            timeout=self._timeout,
        )

    def _enabled_versions(self, client: SecretManagerServiceClient, name: str) -> list[str]:
        """Names of the ENABLED versions, newest first (version ids are increasing integers)."""
        parent = f"projects/{self._project}/secrets/{name}"
        versions = client.list_secret_versions(
            request={"parent": parent, "filter": "state:ENABLED"}, timeout=self._timeout
        )
        names = [v.name for v in versions]  # the pager may call the API again while iterating
        names.sort(key=lambda n: int(n.rsplit("/", 1)[1]), reverse=True)
        return names

    def fetch(self, name: str) -> tuple[str, ...]:
        with _secret_manager_errors():
            client = self._client()
            values = []
            for version in self._enabled_versions(client, name):
                payload = client.access_secret_version(
                    request={"name": version}, timeout=self._timeout, retry=self._access_retry()
                ).payload.data
                values.append(payload.decode("utf-8").strip())
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


@dataclass(slots=True)
class _Entry:
    """What the cache knows about one secret."""

    values: tuple[str, ...] | None = None  # None until a read succeeds
    loaded_at: float = 0.0  # the last successful read (the TTL counts from here)
    attempted_at: float = float("-inf")  # the last read, whatever became of it
    failures: int = 0  # consecutive failed reads
    retry_at: float = float("-inf")  # no read before this, after a failure
    error: BackendError | None = None  # the last failure


class CachedSecrets:
    """Every enabled value per secret, cached for ``ttl_s``; thread-safe.

    ``get`` serves from the cache and reads again when it is older than the
    TTL. If a read fails and older values exist, they keep being served (a
    brief Secret Manager outage must not reject every webhook); with nothing
    cached the BackendError propagates (the caller answers 503).

    Reads are never driven by traffic. After a failed read the next one waits
    1 s, then 2 s, 4 s, … up to ``min_refresh_interval_s``; meanwhile ``get``
    serves the stale values or re-raises the last error at once.
    ``refresh_after_failure`` (a signature did not verify: perhaps the secret
    was just rotated) reads again only if the *last attempt*, successful or
    not, is ``min_refresh_interval_s`` old: an unauthenticated caller can
    send any number of bad signatures and cause at most one Secret Manager
    read per interval per instance. (Keying this on the cache's age instead
    would let every request through whenever the last read had failed.)
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
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _fresh(self, entry: _Entry | None) -> tuple[str, ...] | None:
        if entry is None or entry.values is None:
            return None
        return entry.values if self._clock() - entry.loaded_at < self._ttl else None

    def _load(self, name: str, entry: _Entry) -> tuple[str, ...]:
        """Read ``name`` now (the caller holds its lock and has checked the back-off)."""
        now = self._clock()
        entry.attempted_at = now
        try:
            values = self._values.fetch(name)
        except BackendError as exc:
            entry.failures += 1
            entry.retry_at = now + min(self._min_refresh, 2.0 ** (entry.failures - 1))
            entry.error = exc
            return self._stale(entry)
        entry.values, entry.loaded_at = values, now
        entry.failures, entry.retry_at, entry.error = 0, float("-inf"), None
        return values

    @staticmethod
    def _stale(entry: _Entry) -> tuple[str, ...]:
        if entry.values is not None:
            return entry.values
        error = entry.error or BackendError("secrets", "never read")
        raise BackendError(error.backend, error.detail)

    def get(self, name: str) -> tuple[str, ...]:
        """The enabled values of ``name``, newest first."""
        fresh = self._fresh(self._entries.get(name))
        if fresh is not None:
            return fresh
        with self._lock_for(name):
            entry = self._entries.setdefault(name, _Entry())
            fresh = self._fresh(entry)
            if fresh is not None:
                return fresh
            if self._clock() < entry.retry_at:
                return self._stale(entry)  # backing off after a failed read
            return self._load(name, entry)

    def refresh_after_failure(self, name: str) -> tuple[str, ...] | None:
        """Re-read ``name`` unless it was attempted within the minimum interval; else None.

        Returns the values only when they changed (a retry with the same
        values cannot verify what just failed).
        """
        with self._lock_for(name):
            entry = self._entries.setdefault(name, _Entry())
            now = self._clock()
            if now - entry.attempted_at < self._min_refresh or now < entry.retry_at:
                return None
            before = entry.values
            values = self._load(name, entry)
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
        with _secret_manager_errors():
            version = self._client().add_secret_version(
                request={
                    "parent": f"projects/{self._project}/secrets/{name}",
                    "payload": {"data": value.encode("utf-8")},
                },
                timeout=self._timeout,
            )
        return str(version.name.rsplit("/", 1)[1])

    def disable_older(self, name: str, keep: int = 1) -> list[str]:
        with _secret_manager_errors():
            client = self._client()
            names = self._enabled_versions(client, name)
            for version in names[keep:]:
                client.disable_secret_version(request={"name": version}, timeout=self._timeout)
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
