"""Raw payloads in Cloud Storage: write-once objects, read back for delivery and replay.

Writes and reads of single objects use the JSON API
(https://cloud.google.com/storage/docs/json_api/v1/objects/insert, multipart
upload; https://cloud.google.com/storage/docs/json_api/v1/objects/get with
``alt=media``) over one pooled connection per instance
(:mod:`hookpress.backends._rest`), the same requests google-cloud-storage
makes, without its requests/urllib3 layers. Listing and metadata reads (replay,
the CLI) use the client library, built on first use.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from hookpress.backends._auth import LazyEndpoint
from hookpress.backends._errors import BackendError
from hookpress.backends._json import json_body
from hookpress.instance import Lazy

if TYPE_CHECKING:
    import threading

    from google.cloud.storage import Client

    from hookpress.backends._rest import Answer, Endpoint

__all__ = ["RawObject", "RawStore", "create_only_upload_path", "multipart_upload"]


def _library_errors() -> tuple[type[BaseException], ...]:
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    return (gexc.GoogleAPIError, requests.RequestException, auth_exc.GoogleAuthError, OSError)


class RawObject(msgspec.Struct, frozen=True):
    """A stored raw payload with what GCS keeps beside it."""

    data: bytes
    metadata: dict[str, str]
    created: datetime | None  # when GCS stored it


def _stored(answer: Answer) -> bool:
    """A create-only upload's answer: True written, False already there, else BackendError."""
    if answer.status == 200:
        return True
    if answer.status == 412:  # ifGenerationMatch=0 failed: the object exists, its bytes stand
        return False
    raise BackendError("gcs", f"HTTP_{answer.status}")


def _media(answer: Answer) -> bytes | None:
    """A media read's answer: the bytes, None if there is no such object, else BackendError."""
    if answer.status == 404:
        return None
    if answer.status != 200:
        raise BackendError("gcs", f"HTTP_{answer.status}")
    return answer.body


# A part boundary must not occur in the bytes it frames, and a provider chooses those
# bytes: it is this process's random secret (never sent anywhere but to GCS) and a
# count, so it is unguessable, yet costs no call for randomness per upload.
_BOUNDARY = "hookpress-" + secrets.token_hex(12) + "-"
_uploads = itertools.count()


def multipart_upload(
    name: str, data: bytes, metadata: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """A JSON API multipart upload of ``data`` as object ``name``: the body and its
    Content-Type (the object's resource, then its bytes; ``metadata`` with it)."""
    resource: dict[str, object] = {"name": name, "contentType": "application/json"}
    if metadata:
        resource["metadata"] = metadata
    boundary = f"{_BOUNDARY}{next(_uploads)}"
    body = b"".join(
        (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            json_body(resource, ascii_only=True),
            f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return body, f"multipart/related; boundary={boundary}"


def create_only_upload_path(bucket: str) -> str:
    """The upload's path: ``ifGenerationMatch=0`` makes it create-only (412 if it exists)."""
    return (
        f"/upload/storage/v1/b/{quote(bucket, safe='')}/o"
        "?uploadType=multipart&ifGenerationMatch=0&fields=generation"
    )


def _client(project: str) -> Client:
    from google.cloud import storage

    return storage.Client(project=project)


class RawStore:
    """Objects of the raw-payload bucket. Connections and clients are made on first use."""

    def __init__(
        self,
        project: str,
        bucket: str,
        timeout_s: float,
        client: Client | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        self._bucket_name = bucket
        self._timeout = timeout_s
        self._bucket = Lazy(
            lambda: (client if client is not None else _client(project)).bucket(bucket)
        )
        self._rest = LazyEndpoint("gcs", timeout_s, endpoint)

    def warm(self) -> list[threading.Thread]:
        """Open a connection (and ask for the token) ahead of the first call, in threads
        (:meth:`hookpress.wire.Endpoint.warm`)."""
        return self._rest().warm()

    def uri(self, name: str) -> str:
        """``gs://bucket/name``."""
        return f"gs://{self._bucket_name}/{name}"

    def name_of(self, uri: str) -> str:
        """The object name of a ``gs://`` URI of this bucket."""
        prefix = f"gs://{self._bucket_name}/"
        if not uri.startswith(prefix):
            raise ValueError("not an object of the raw bucket")
        return uri[len(prefix) :]

    def _retry(self) -> object:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self._timeout)

    def start_put(
        self, name: str, data: bytes, metadata: dict[str, str] | None = None
    ) -> Callable[[], bool]:
        """Send the create-only upload now; the returned call waits for it (see :meth:`put`).

        The ingress sends this, creates the Firestore record meanwhile, then
        waits: the two writes overlap without a thread between them.
        """
        body, content_type = multipart_upload(name, data, metadata)
        pending = self._rest().send(
            "POST", create_only_upload_path(self._bucket_name), body, {"Content-Type": content_type}
        )
        return lambda: _stored(pending.result())

    def put(self, name: str, data: bytes, metadata: dict[str, str] | None = None) -> bool:
        """Store ``data`` once under ``name``: True if written now, False if it already existed.

        ``ifGenerationMatch=0`` makes the write a create-only precondition:
        a retry can never replace the bytes first received. ``metadata`` is
        stored with the object (in the same request).
        """
        return self.start_put(name, data, metadata)()

    def start_get(self, name: str) -> Callable[[], bytes | None]:
        """Send the object's read now; the returned call waits for it (see :meth:`get`).

        Deliver sends this with the record's read when the message names the
        object: the two reads overlap without a thread between them.
        """
        pending = self._rest().send(
            "GET",
            f"/storage/v1/b/{quote(self._bucket_name, safe='')}/o/{quote(name, safe='')}?alt=media",
        )
        return lambda: _media(pending.result())

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        return self.start_get(name)()

    def get_with_metadata(self, name: str) -> RawObject | None:
        """The object's bytes, custom metadata and creation time, or None if it does not exist."""
        from google.api_core import exceptions as gexc

        try:
            blob = self._bucket().get_blob(name, timeout=self._timeout, retry=self._retry())
            if blob is None:
                return None
            data: bytes = blob.download_as_bytes(timeout=self._timeout, retry=self._retry())
        except gexc.NotFound:
            return None
        except _library_errors() as exc:
            raise BackendError("gcs", type(exc).__name__) from None
        return RawObject(data, dict(blob.metadata or {}), blob.time_created)

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``."""
        try:
            return [
                b.name
                for b in self._bucket().list_blobs(
                    prefix=prefix, timeout=self._timeout, retry=self._retry()
                )
            ]
        except _library_errors() as exc:
            raise BackendError("gcs", type(exc).__name__) from None
