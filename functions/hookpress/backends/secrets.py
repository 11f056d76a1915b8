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

import base64
import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import msgspec

from hookpress.backends._auth import LazyEndpoint
from hookpress.backends._errors import BackendError, error_status
from hookpress.backends._json import json_body
from hookpress.instance import Lazy, background
from hookpress.settings import SecretsConfig, SettingsError

if TYPE_CHECKING:
    from hookpress.backends._rest import Endpoint

__all__ = [
    "CachedSecrets",
    "EnvValues",
    "FileSecretWriter",
    "FileValues",
    "SecretManagerREST",
    "SecretManagerValues",
    "SecretManagerWriter",
    "SecretValues",
    "SecretWriter",
    "build_secret_values",
    "build_secret_writer",
]


class SecretManagerClient(Protocol):
    """The calls the adapters make: ``SecretManagerServiceClient``'s names and requests."""

    def list_secret_versions(self, request: Any, timeout: float) -> Any: ...

    def access_secret_version(self, request: Any, timeout: float) -> Any: ...

    def add_secret_version(self, request: Any, timeout: float) -> Any: ...

    def disable_secret_version(self, request: Any, timeout: float) -> Any: ...


class SecretValues(Protocol):
    """Fetches every enabled value of a secret, newest first (uncached)."""

    def fetch(self, name: str) -> tuple[str, ...]:
        """Return the values; raise BackendError when the store cannot be read."""
        ...


@contextlib.contextmanager
def _secret_manager_errors() -> Iterator[None]:
    """Turn every way a Secret Manager call can fail into BackendError.

    Our REST client raises BackendError for an error answer and for a failed
    connection (the wire's) or token (``backends._auth``); what is left is
    ``ValueError`` (an answer that is not the documented JSON, a payload that
    is not UTF-8, a version name that is not a number), ``KeyError`` and
    ``TypeError`` (a field missing or of the wrong type) and ``OSError``.
    A client passed in (tests: a stand-in for ``SecretManagerServiceClient``)
    may raise the client library's exceptions: those too, when it is installed.
    Anything else escaping would be a 500.
    """
    try:
        yield
    except BackendError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError("secretmanager", type(exc).__name__) from None
    except Exception as exc:
        if isinstance(exc, _library_errors()):
            raise BackendError("secretmanager", type(exc).__name__) from None
        raise


def _library_errors() -> tuple[type[Exception], ...]:
    """google-api-core's and google-auth's exception bases, where they are installed."""
    found: list[type[Exception]] = []
    try:
        from google.api_core import exceptions as gexc

        found.append(gexc.GoogleAPIError)
    except ImportError:
        pass
    try:
        from google.auth import exceptions as auth_exc

        found.append(auth_exc.GoogleAuthError)
    except ImportError:
        pass
    return tuple(found)


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Secret Manager sends with a payload (``dataCrc32c``)."""
    crc = 0xFFFFFFFF
    table = _crc32c_table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@functools.cache
def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


class SecretManagerREST:
    """The four Secret Manager v1 calls the adapters make, over its REST API on our wire.

    The methods and their request dicts are ``SecretManagerServiceClient``'s, so one
    stand-in serves the tests of both. Over the JSON API, as GCS, Firestore and Pub/Sub
    are (``backends/_rest.py``): the client library's import (gRPC, proto-plus,
    api-core: ~250 ms under -X importtime) and its first channel were most of a cloud
    instance's first request. The calls, as documented
    (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions):

    - ``GET /v1/{parent}/versions?filter=state:ENABLED`` (``list``; pages by
      ``nextPageToken``),
    - ``GET /v1/{name}:access`` (``access``: ``payload.data`` base64, ``payload.dataCrc32c``
      the payload's CRC-32C as a decimal string, checked here),
    - ``POST /v1/{parent}:addVersion`` (``addVersion``, with the payload's checksum),
    - ``POST /v1/{name}:disable`` (``disable``).

    A 429 or 503 is retried within the timeout (``backends._rest.Endpoint``); every
    other failure is a BackendError.
    """

    _PAGE_SIZE = 250  # the most versions a list call returns at once

    def __init__(self, endpoint: Endpoint | None = None, timeout_s: float = 10.0) -> None:
        self._endpoint = LazyEndpoint("secretmanager", timeout_s, endpoint)

    def warm(self) -> list[threading.Thread]:
        """Open a connection (and ask for the token) ahead of the first call, in threads
        (:meth:`hookpress.wire.Endpoint.warm`)."""
        return self._endpoint().warm()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json_body(body, ascii_only=True)
        headers = None if body is None else {"Content-Type": "application/json"}
        answer = self._endpoint().request(method, path, data, headers)
        if answer.status != 200:
            raise BackendError("secretmanager", error_status(answer))
        doc = answer.json()
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return doc

    def list_secret_versions(self, request: Mapping[str, str], timeout: float) -> list[Any]:
        """Every version matching ``request["filter"]``, all pages."""
        versions: list[Any] = []
        token = ""
        while True:
            query = {"filter": request["filter"], "pageSize": str(self._PAGE_SIZE)}
            if token:
                query["pageToken"] = token
            doc = self._call("GET", f"/v1/{request['parent']}/versions?{urlencode(query)}")
            versions += [SimpleNamespace(name=str(v["name"])) for v in doc.get("versions", [])]
            token = str(doc.get("nextPageToken") or "")
            if not token:
                return versions

    def access_secret_version(
        self, request: Mapping[str, str], timeout: float, retry: object = None
    ) -> Any:
        """``.payload.data``: the version's bytes, their checksum verified."""
        payload = self._call("GET", f"/v1/{request['name']}:access")["payload"]
        data = base64.b64decode(payload.get("data", ""), validate=True)
        checksum = payload.get("dataCrc32c")
        if checksum is not None and int(checksum) != _crc32c(data):
            raise BackendError("secretmanager", "checksum_mismatch")
        return SimpleNamespace(payload=SimpleNamespace(data=data))

    def add_secret_version(self, request: Mapping[str, Any], timeout: float) -> Any:
        """A new ENABLED version holding ``request["payload"]["data"]``; ``.name`` is its name."""
        data: bytes = request["payload"]["data"]
        payload = {"data": base64.b64encode(data).decode(), "dataCrc32c": str(_crc32c(data))}
        doc = self._call("POST", f"/v1/{request['parent']}:addVersion", {"payload": payload})
        return SimpleNamespace(name=str(doc["name"]))

    def disable_secret_version(self, request: Mapping[str, str], timeout: float) -> None:
        """The version can no longer be accessed (enable it again to undo)."""
        self._call("POST", f"/v1/{request['name']}:disable", {})


class SecretManagerValues:
    """Secret Manager: list the ENABLED versions, access each."""

    def __init__(
        self,
        project: str,
        timeout_s: float,
        client: SecretManagerClient | None = None,
    ) -> None:
        self._project = project
        self._timeout = timeout_s
        self._client: Lazy[SecretManagerClient] = Lazy(
            lambda: SecretManagerREST(timeout_s=timeout_s), client
        )

    def _enabled_versions(self, client: SecretManagerClient, name: str) -> list[str]:
        """Names of the ENABLED versions, newest first (version ids are increasing integers)."""
        parent = f"projects/{self._project}/secrets/{name}"
        versions = client.list_secret_versions(
            request={"parent": parent, "filter": "state:ENABLED"}, timeout=self._timeout
        )
        names = [v.name for v in versions]  # a pager may call the API again while iterating
        names.sort(key=lambda n: int(n.rsplit("/", 1)[1]), reverse=True)
        return names

    def warm(self) -> list[threading.Thread]:
        """Secret Manager's connection and token made ahead of the first read, in threads."""
        client = self._client()
        return client.warm() if isinstance(client, SecretManagerREST) else []

    def fetch(self, name: str) -> tuple[str, ...]:
        with _secret_manager_errors():
            client = self._client()
            values = []
            for version in self._enabled_versions(client, name):
                payload = client.access_secret_version(
                    request={"name": version}, timeout=self._timeout
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


class _Entry(msgspec.Struct):
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

    def warm(self) -> list[threading.Thread]:
        """Have the store ready its first read, if it reads over the network (Secret
        Manager: a connection and the token, in threads); the file and the environment
        need nothing. Returns the started threads."""
        warm = getattr(self._values, "warm", None)
        return list(warm()) if warm is not None else []

    def prefetch(self, name: str) -> threading.Thread | None:
        """Read ``name`` now, in a daemon thread, as :meth:`get` would: a ``get`` meanwhile
        waits for this read instead of making its own, and a failure is kept (and backed
        off) as any failed read is. Returns the started thread (None: none to be had)."""

        def read() -> None:
            with contextlib.suppress(BackendError):
                self.get(name)

        return background(read, "prefetch-secret")

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
