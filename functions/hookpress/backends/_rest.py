"""The Google JSON APIs on our own HTTP/1.1 wire (:mod:`hookpress.wire`): hosts, retries, errors.

Why not the client libraries here: measured (bench/results/candidates.md),
one GCS upload through google-cloud-storage costs ~0.9 ms of CPU in
requests/urllib3 and the library's own layers, one Firestore create through
google-cloud-firestore ~1 ms (proto-plus marshalling, api_core retry and
gRPC), one publish through the Pub/Sub publisher ~1.5 ms (its batching
thread, futures and condition variables); the same calls as JSON on a
kept-alive connection cost a fraction of that, and importing nothing but
the standard library keeps a cold start short. The JSON APIs are the
documented public ones (links in each adapter).

What this module adds to the wire's rules (pooling, one ``sendall``, retries
only where nothing can have been applied, split phase):

- **429 and 503 are retried** with backoff within the call's deadline: a
  Google API that answers them refused the request, it did not do it.
- **Auth**: ``Authorization: Bearer`` with the instance's access token
  (:mod:`hookpress.backends._auth`); against an emulator, its own fixed value.
- **TLS** against the system's CA set, one context for the process
  (:func:`hookpress.wire.system_tls`).

Every failure is a :class:`BackendError` naming the service.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookpress import wire
from hookpress.backends._errors import BackendError
from hookpress.wire import Answer, Pending, WireError

__all__ = ["Answer", "Endpoint", "Pending", "WireError", "endpoint_url"]

#: the public endpoint of each API, and the variable that points the client libraries
#: (and so this transport) at an emulator
_HOSTS: dict[str, tuple[str, str | None]] = {
    "gcs": ("https://storage.googleapis.com", "STORAGE_EMULATOR_HOST"),
    "firestore": ("https://firestore.googleapis.com", "FIRESTORE_EMULATOR_HOST"),
    "pubsub": ("https://pubsub.googleapis.com", "PUBSUB_EMULATOR_HOST"),
    # no emulator exists (locally, secrets come from a file or the environment)
    "secretmanager": ("https://secretmanager.googleapis.com", None),
}


def endpoint_url(service: str, env: Mapping[str, str]) -> tuple[str, bool]:
    """The base URL of ``service`` and whether it is an emulator (from the same variables
    the Google client libraries read: ``STORAGE_EMULATOR_HOST`` may carry a scheme, the
    others are ``host:port``)."""
    public, variable = _HOSTS[service]
    emulator = (env.get(variable) or "").strip() if variable else ""
    if not emulator:
        return public, False
    return (emulator if "://" in emulator else f"http://{emulator}").rstrip("/"), True


class Endpoint(wire.Endpoint):
    """A Google API host: 429 and 503 retried, failures a :class:`BackendError`."""

    retry_statuses = frozenset({429, 503})

    def failure(self, phase: wire.Phase, exc: BaseException) -> Exception:
        """``BackendError(service, <the exception's name>)``, whatever the phase."""
        return BackendError(self.service, type(exc).__name__)
