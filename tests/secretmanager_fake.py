"""A stand-in for the Secret Manager client the adapters call (``SecretManagerREST``, whose
methods are ``SecretManagerServiceClient``'s): the four calls, in memory.

Every failure a client can surface is in :func:`secret_manager_errors`: the client
library's kinds, and the plain ones (a socket's). hookpress's own REST client raises
BackendError itself; its failures are tested against a stand-in server in
``tests/unit/test_secret_manager_rest.py``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERRORS", "BrokenSecretManager", "FakeSecretManager", "secret_manager_errors"]


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

    def access_secret_version(self, request: dict, timeout: float, retry: object = None):
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


def secret_manager_errors() -> dict[str, Exception]:
    """One instance of every kind of failure, by name."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    return {
        "ServiceUnavailable": gexc.ServiceUnavailable("down"),
        "DeadlineExceeded": gexc.DeadlineExceeded("slow"),
        "ResourceExhausted": gexc.ResourceExhausted("quota"),
        "InternalServerError": gexc.InternalServerError("oops"),
        "PermissionDenied": gexc.PermissionDenied("no role"),
        "Unauthenticated": gexc.Unauthenticated("who"),
        "NotFound": gexc.NotFound("no such secret"),
        # a retry that gave up: a GoogleAPIError, but not a GoogleAPICallError
        "RetryError": gexc.RetryError("Timeout of 10.0s exceeded", gexc.ServiceUnavailable("x")),
        # the access token could not be refreshed: google-auth's, not google-api-core's
        "RefreshError": auth_exc.RefreshError("metadata server said no"),
        "TransportError": auth_exc.TransportError("metadata server unreachable"),
        "ConnectionError": ConnectionError("reset"),
        "TimeoutError": TimeoutError("socket"),
    }


ERRORS = sorted(secret_manager_errors())


class BrokenSecretManager(FakeSecretManager):
    """The fake store, with one error raised from a chosen call (or while paging)."""

    def __init__(self, error: Exception, where: str, parent: str = "projects/p/secrets/s") -> None:
        super().__init__()
        self.error, self.where = error, where
        self.versions[parent] = [(1, "ENABLED", "v1"), (2, "ENABLED", "v2")]

    def list_secret_versions(self, request: dict, timeout: float) -> Any:
        versions = super().list_secret_versions(request, timeout)
        if self.where == "list":
            raise self.error
        if self.where == "paging":  # the pager fetches its second page while iterated

            def pages() -> Any:
                yield versions[0]
                raise self.error

            return pages()
        return versions

    def access_secret_version(self, request: dict, timeout: float, retry: object = None) -> Any:
        if self.where == "access":
            raise self.error
        return super().access_secret_version(request, timeout, retry)

    def add_secret_version(self, request: dict, timeout: float) -> Any:
        raise self.error

    def disable_secret_version(self, request: dict, timeout: float) -> None:
        raise self.error
