"""Raw payloads in Cloud Storage: write-once objects, read back for delivery and replay."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from hookpress.backends._errors import BackendError

if TYPE_CHECKING:
    from google.cloud.storage import Bucket, Client

__all__ = ["RawObject", "RawStore"]

_ERRORS = (gexc.GoogleAPIError, requests.RequestException, auth_exc.GoogleAuthError, OSError)


@dataclass(frozen=True, slots=True)
class RawObject:
    """A stored raw payload with what GCS keeps beside it."""

    data: bytes
    metadata: dict[str, str]
    created: datetime | None  # when GCS stored it


class RawStore:
    """Objects of the raw-payload bucket. The client is built on first use."""

    def __init__(
        self, project: str, bucket: str, timeout_s: float, client: Client | None = None
    ) -> None:
        self._project = project
        self._bucket_name = bucket
        self._timeout = timeout_s
        self._client = client
        self._bucket: Bucket | None = None
        self._lock = threading.Lock()

    def uri(self, name: str) -> str:
        """``gs://bucket/name``."""
        return f"gs://{self._bucket_name}/{name}"

    def name_of(self, uri: str) -> str:
        """The object name of a ``gs://`` URI of this bucket."""
        prefix = f"gs://{self._bucket_name}/"
        if not uri.startswith(prefix):
            raise ValueError("not an object of the raw bucket")
        return uri[len(prefix) :]

    def _get_bucket(self) -> Bucket:
        with self._lock:
            if self._bucket is None:
                if self._client is None:
                    from google.cloud import storage

                    self._client = storage.Client(project=self._project)
                self._bucket = self._client.bucket(self._bucket_name)
            return self._bucket

    def _retry(self) -> object:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self._timeout)

    def put(self, name: str, data: bytes, metadata: dict[str, str] | None = None) -> bool:
        """Store ``data`` once under ``name``: True if written now, False if it already existed.

        ``if_generation_match=0`` makes the write a create-only precondition:
        a retry can never replace the bytes first received. ``metadata`` is
        stored with the object (in the same request).
        """
        blob = self._get_bucket().blob(name)
        if metadata:
            blob.metadata = metadata
        try:
            blob.upload_from_string(
                data,
                content_type="application/json",
                if_generation_match=0,
                timeout=self._timeout,
                retry=self._retry(),
            )
        except gexc.PreconditionFailed:
            return False
        except _ERRORS as exc:
            raise BackendError("gcs", type(exc).__name__) from None
        return True

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        blob = self._get_bucket().blob(name)
        try:
            data: bytes = blob.download_as_bytes(timeout=self._timeout, retry=self._retry())
        except gexc.NotFound:
            return None
        except _ERRORS as exc:
            raise BackendError("gcs", type(exc).__name__) from None
        return data

    def get_with_metadata(self, name: str) -> RawObject | None:
        """The object's bytes, custom metadata and creation time, or None if it does not exist."""
        try:
            blob = self._get_bucket().get_blob(name, timeout=self._timeout, retry=self._retry())
            if blob is None:
                return None
            data: bytes = blob.download_as_bytes(timeout=self._timeout, retry=self._retry())
        except gexc.NotFound:
            return None
        except _ERRORS as exc:
            raise BackendError("gcs", type(exc).__name__) from None
        return RawObject(data, dict(blob.metadata or {}), blob.time_created)

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``."""
        try:
            return [
                b.name
                for b in self._get_bucket().list_blobs(
                    prefix=prefix, timeout=self._timeout, retry=self._retry()
                )
            ]
        except _ERRORS as exc:
            raise BackendError("gcs", type(exc).__name__) from None
