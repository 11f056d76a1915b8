"""Adapters to the Google Cloud backends: the only modules that import their clients.

Exceptions
----------
BackendError
    Raised by every adapter when its backend failed or timed out (GCS,
    Firestore, Pub/Sub, Secret Manager). ``backend`` names which one. The
    ingress answers it with 503 + Retry-After; the deliver function with a
    non-2xx so Pub/Sub retries.
"""

from __future__ import annotations

from hookpress.backends._errors import BackendError

__all__ = ["BackendError"]
