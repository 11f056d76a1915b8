"""When a raw object was stored: the best stand-in for a lost record's ``received_at``.

A record rebuilt from GCS must carry the time the ingress received the event:
the deliver function uses it as ``occurred_at`` when the payload has none, and
WordPress answers 422 to an ``Idempotency-Key`` reused with another body. The
object's metadata holds ``received_at`` when the ingress wrote it; otherwise
the object's creation time, a few milliseconds after, is the closest there
is. This adapter reads that one attribute (``RawStore`` does not expose it).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

from hookpress.backends import BackendError

if TYPE_CHECKING:
    from google.cloud.storage import Bucket, Client

__all__ = ["ObjectTimes"]


class ObjectTimes:
    """Creation times of the raw bucket's objects. The client is built on first use."""

    def __init__(
        self, project: str, bucket: str, timeout_s: float, client: Client | None = None
    ) -> None:
        self._project = project
        self._bucket_name = bucket
        self._timeout = timeout_s
        self._client = client
        self._bucket: Bucket | None = None
        self._lock = threading.Lock()

    def _get_bucket(self) -> Bucket:
        with self._lock:
            if self._bucket is None:
                if self._client is None:
                    from google.cloud import storage

                    self._client = storage.Client(project=self._project)
                self._bucket = self._client.bucket(self._bucket_name)
            return self._bucket

    def created_at(self, name: str) -> datetime | None:
        """When ``name`` was created, or None if it does not exist."""
        import requests
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        try:
            blob = self._get_bucket().get_blob(name, timeout=self._timeout)
        except gexc.NotFound:
            return None
        except (gexc.GoogleAPIError, requests.RequestException, auth_exc.GoogleAuthError, OSError):
            raise BackendError("gcs", "creation time") from None
        if blob is None:
            return None
        created = blob.time_created
        return created if isinstance(created, datetime) else None
