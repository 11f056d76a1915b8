"""Event records and the control document in Firestore.

Every status change that could race another writer is a *transition*: an
update with a ``last_update_time`` precondition, so a late writer (say the
ingress marking ``published`` after the deliver function already marked
``delivered``) can never move an event backwards.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from hookpress.backends._errors import BackendError

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference

__all__ = ["EventRecords", "Snapshot"]

_ERRORS = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A record as read, with the update time a transition must match."""

    key: str
    data: dict[str, Any]
    update_time: datetime


class EventRecords:
    """The ``events`` collection (and any sibling collection, e.g. ``control``)."""

    def __init__(
        self,
        project: str,
        database: str,
        collection: str,
        timeout_s: float,
        client: Client | None = None,
    ) -> None:
        self._project = project
        self._database = database
        self._collection_name = collection
        self._timeout = timeout_s
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The Firestore client, built on first use."""
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client

    def collection(self, name: str | None = None) -> CollectionReference:
        """The events collection, or another one of the same database."""
        return self.client.collection(name or self._collection_name)

    def _retry(self) -> Any:
        from google.api_core.retry import Retry

        return Retry(timeout=self._timeout)

    @property
    def collection_name(self) -> str:
        """The events collection's name."""
        return self._collection_name

    def create(
        self, key: str, record: dict[str, Any], collection: str | None = None
    ) -> datetime | None:
        """Create ``key`` if absent: its update time, or None if it already existed."""
        try:
            result = (
                self.collection(collection)
                .document(key)
                .create(record, timeout=self._timeout, retry=self._retry())
            )
        except gexc.AlreadyExists:
            return None
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None
        update_time: datetime = result.update_time
        return update_time

    def get(self, key: str, collection: str | None = None) -> Snapshot | None:
        """The record, or None."""
        try:
            snap = (
                self.collection(collection)
                .document(key)
                .get(timeout=self._timeout, retry=self._retry())
            )
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None
        if not snap.exists:
            return None
        return Snapshot(key=key, data=snap.to_dict() or {}, update_time=snap.update_time)

    def transition(
        self, key: str, expected_update_time: datetime, fields: dict[str, Any]
    ) -> datetime | None:
        """Update only if unchanged since ``expected_update_time``; None if someone else won."""
        client = self.client
        try:
            result = (
                self.collection()
                .document(key)
                .update(
                    fields,
                    option=client.write_option(last_update_time=expected_update_time),
                    timeout=self._timeout,
                    retry=self._retry(),
                )
            )
        except (gexc.FailedPrecondition, gexc.NotFound):
            return None
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None
        update_time: datetime = result.update_time
        return update_time

    def with_status(self, status: str, updated_before: datetime, limit: int) -> list[Snapshot]:
        """Records in ``status`` not updated since ``updated_before``, oldest first.

        Needs the composite index (status, updated_at) the Pulumi program creates.
        """
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (
            self.collection()
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter("updated_at", "<", updated_before))
            .order_by("updated_at")
            .limit(limit)
        )
        try:
            return [
                Snapshot(key=doc.id, data=doc.to_dict() or {}, update_time=doc.update_time)
                for doc in query.stream(timeout=self._timeout, retry=self._retry())
            ]
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None

    def set(self, key: str, fields: dict[str, Any], collection: str | None = None) -> None:
        """Merge ``fields`` into the document (created if absent)."""
        try:
            self.collection(collection).document(key).set(
                fields, merge=True, timeout=self._timeout, retry=self._retry()
            )
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None

    @staticmethod
    def increment(n: int) -> Any:
        """A server-side increment, for ``set``/``update`` fields."""
        from google.cloud import firestore

        return firestore.Increment(n)

    def update_unless(self, key: str, fields: dict[str, Any], *, unless_status: str) -> bool:
        """Update ``key`` in a transaction unless its status is ``unless_status``.

        False when the record is missing or already in that status (for
        instance: a failure must never overwrite a concurrent ``delivered``).
        """
        from google.cloud import firestore

        client = self.client
        ref = self.collection().document(key)

        @firestore.transactional
        def run(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            if not snap.exists or (snap.to_dict() or {}).get("status") == unless_status:
                return False
            transaction.update(ref, fields)
            return True

        try:
            return bool(run(client.transaction()))
        except _ERRORS as exc:
            raise BackendError("firestore", type(exc).__name__) from None
