"""Access tokens for the JSON API calls: the instance's own service account.

In Cloud Run / Cloud Functions the token comes from the metadata server
(https://cloud.google.com/run/docs/securing/service-identity#fetching_identity_and_access_tokens).
There (``K_SERVICE`` is set: https://cloud.google.com/run/docs/container-contract#env-vars)
and with no key file configured, it is asked for directly, one GET on our
wire, the request google-auth's compute-engine credentials make
(``tests/unit/test_auth_metadata.py`` holds them side by side): importing
google-auth's compute-engine credentials for it cost 160-240 ms.
Anywhere else ``google.auth.default()`` finds the credentials a developer set
up (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default
login``), exactly as the client libraries do. A token is cached until five
minutes before it expires and refreshed under a lock, so one request per
hour pays for the refresh, not every request.

google-auth is imported on the first call that needs a token from it, never
at import time and never against an emulator: its transport here is a small
adapter over ``urllib.request`` (``google.auth.transport.Request`` is a
documented interface), so no HTTP library is imported for it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hookpress.backends._errors import BackendError
from hookpress.instance import Lazy

if TYPE_CHECKING:
    from hookpress.backends._rest import Endpoint

__all__ = [
    "EMULATOR_AUTHORIZATION",
    "AccessTokens",
    "LazyEndpoint",
    "default_tokens",
    "metadata_host",
    "service_endpoint",
]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: the instance's token (https://cloud.google.com/compute/docs/access/authenticate-workloads#applications)
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105 - a path
_METADATA_HOST = "metadata.google.internal"
_REFRESH_EARLY_S = 300.0
#: what the client libraries send to an emulator (the Firestore emulator reads it as "admin")
EMULATOR_AUTHORIZATION = "Bearer owner"


class AccessTokens:
    """``Authorization`` header values from the application default credentials; thread-safe."""

    def __init__(
        self, credentials: Any = None, request: Any = None, metadata_host: str | None = None
    ) -> None:
        self._credentials = credentials
        self._request = request
        self._metadata_host = metadata_host  # set: ask the metadata server, not google-auth
        self._header: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """``Bearer <token>``, refreshed when it is within five minutes of expiring."""
        header = self._header
        if header is not None and time.monotonic() < self._refresh_at:
            return header
        with self._lock:
            if self._header is None or time.monotonic() >= self._refresh_at:
                self._refresh()
            header = self._header
            if header is None:  # pragma: no cover - _refresh sets it or raises
                raise BackendError("auth", "no token")
            return header

    def _refresh(self) -> None:
        if self._credentials is None and self._metadata_host is not None:
            self._from_metadata_server(self._metadata_host)
            return
        from google.auth import exceptions as auth_exc

        try:
            if self._credentials is None:
                import google.auth

                self._credentials, _ = google.auth.default(scopes=list(SCOPES))
            if self._request is None:
                self._request = _UrllibRequest()
            self._credentials.refresh(self._request)
        except auth_exc.GoogleAuthError as exc:
            raise BackendError("auth", type(exc).__name__) from None
        token = self._credentials.token
        expiry = getattr(self._credentials, "expiry", None)  # a naive UTC datetime, or None
        lifetime = 3600.0
        if expiry is not None:
            from datetime import UTC

            lifetime = expiry.replace(tzinfo=expiry.tzinfo or UTC).timestamp() - time.time()
        self._keep(token, lifetime)

    def _keep(self, token: str, lifetime_s: float) -> None:
        """Serve ``token`` until five minutes before its ``lifetime_s`` runs out."""
        self._header = f"Bearer {token}"
        self._refresh_at = time.monotonic() + max(0.0, lifetime_s - _REFRESH_EARLY_S)

    def _from_metadata_server(self, host: str) -> None:
        """``GET …/token?scopes=…`` with ``Metadata-Flavor: Google``: ``access_token``,
        ``expires_in`` (seconds), ``token_type``."""
        from urllib.parse import quote

        from hookpress.backends._rest import Endpoint

        endpoint = Endpoint("auth", f"http://{host}", 10.0)
        try:
            answer = endpoint.request(
                "GET",
                f"{METADATA_TOKEN_PATH}?scopes={quote(','.join(SCOPES), safe='')}",
                headers={"Metadata-Flavor": "Google"},
            )
        finally:
            endpoint.close()
        if answer.status != 200:
            raise BackendError("auth", f"metadata_HTTP_{answer.status}")
        try:
            doc = answer.json()
            token, lifetime = str(doc["access_token"]), float(doc.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackendError("auth", "unreadable token") from None
        if not token:
            raise BackendError("auth", "empty token")
        self._keep(token, lifetime)


def metadata_host(env: Mapping[str, str] = os.environ) -> str | None:
    """The metadata server to ask for tokens directly, or None (then google-auth decides).

    On Cloud Run (``K_SERVICE``) unless ``GOOGLE_APPLICATION_CREDENTIALS`` names a key
    file, which google-auth would prefer; ``GCE_METADATA_HOST`` moves the server, as it
    does for google-auth.
    """
    if env.get("GOOGLE_APPLICATION_CREDENTIALS") or not env.get("K_SERVICE"):
        return None
    return (env.get("GCE_METADATA_HOST") or "").strip() or _METADATA_HOST


class _UrllibRequest:
    """``google.auth.transport.Request`` over urllib (token refreshes only: rare, small)."""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **_: Any,
    ) -> Any:
        import urllib.error
        import urllib.request

        from google.auth import exceptions as auth_exc

        req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout or 10) as resp:  # noqa: S310
                return _Response(resp.status, _lower(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, _lower(exc.headers.items()), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise auth_exc.TransportError(str(exc)) from exc  # type: ignore[no-untyped-call]


def _lower(items: Any) -> dict[str, str]:
    # google-auth reads headers by lower-case name (its requests transport is case-insensitive)
    return {str(k).lower(): str(v) for k, v in items}


class _Response:
    """``google.auth.transport.Response``: status, headers, data."""

    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


_default: AccessTokens | None = None
_default_lock = threading.Lock()


def default_tokens() -> AccessTokens:
    """The process's one token source (credentials are per instance, not per adapter)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AccessTokens(metadata_host=metadata_host())
        return _default


def service_endpoint(
    service: str, timeout_s: float, env: Mapping[str, str] = os.environ
) -> Endpoint:
    """The JSON API endpoint of ``service`` (``gcs``, ``firestore``, ``pubsub``), authorized.

    In the cloud every request carries the instance's access token. Against an
    emulator, what the client libraries send it: ``Bearer owner`` to the
    Firestore emulator (which reads it as an administrator, so security rules
    do not apply), nothing to the others.
    """
    from hookpress.backends._rest import Endpoint, endpoint_url

    url, emulated = endpoint_url(service, env)
    if not emulated:
        return Endpoint(service, url, timeout_s, default_tokens())
    return Endpoint(
        service, url, timeout_s, EMULATOR_AUTHORIZATION if service == "firestore" else None
    )


class LazyEndpoint(Lazy["Endpoint"]):
    """An adapter's endpoint: the one it was given, else :func:`service_endpoint` on first use.

    Adapters are built at import or configuration time; the connection pool
    and the credentials are not made until the first call needs them.
    Thread-safe: concurrent first calls make one endpoint.
    """

    def __init__(self, service: str, timeout_s: float, endpoint: Endpoint | None = None) -> None:
        super().__init__(lambda: service_endpoint(service, timeout_s), endpoint)
