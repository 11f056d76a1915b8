"""Event records and the control document in Firestore.

Every status change that could race another writer is a *transition*: an
update with a ``last_update_time`` precondition, so a late writer (say the
ingress marking ``published`` after the deliver function already marked
``delivered``) can never move an event backwards.

The per-event operations (create, get, transition, merge-set, update-unless)
go through Firestore's REST API (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/commit)
over one pooled connection per instance (:mod:`hookpress.backends._rest`): a
commit with a ``currentDocument`` precondition is the same write the client
library makes, for a fraction of its CPU. Queries (the reconciler, the CLI)
use the client library, built on first use.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from hookpress.backends._auth import LazyEndpoint
from hookpress.backends._batch import GroupCall
from hookpress.backends._errors import BackendError, error_status
from hookpress.backends._json import json_body
from hookpress.backends._values import (
    Increment,
    ServerTime,
    decode_fields,
    encode_fields,
    rfc3339,
)
from hookpress.instance import Lazy

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Sequence

    from google.cloud.firestore import Client, CollectionReference

    from hookpress.backends._rest import Answer, Endpoint, Pending

__all__ = ["EventRecords", "Snapshot"]

_SIMPLE_FIELD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_CONTENTION_RETRIES = 5
_BATCH_WRITES = 100  # batchWrite takes up to 500
_COMMIT_GROUPS = 100  # groups of creates per grouped commit (a marker and a record: 200 writes)
#: a commit refused for one of its writes (a precondition, the write itself), not the request
_WRITE_REFUSED = frozenset({400, 409})
#: google.rpc.Code names of the per-write statuses batchWrite answers with
_CODES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}
#: a write that lost its precondition: an answer, not a failure
_LOST = frozenset({"ALREADY_EXISTS", "FAILED_PRECONDITION", "NOT_FOUND"})

WriteResult = tuple[ServerTime | None, str]  # the update time, or None and why


def _library_errors() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    return (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError)


def _field_path(name: str) -> str:
    """A top-level field name as a field path (backquoted unless it is a plain identifier)."""
    if _SIMPLE_FIELD.match(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Snapshot(msgspec.Struct, frozen=True):
    """A record as read, with the update time a transition must match."""

    key: str
    data: dict[str, Any]
    update_time: datetime


def _client(project: str, database: str) -> Client:
    from google.cloud import firestore

    return firestore.Client(project=project, database=database)


class EventRecords:
    """The ``events`` collection (and any sibling collection, e.g. ``control``)."""

    def __init__(
        self,
        project: str,
        database: str,
        collection: str,
        timeout_s: float,
        client: Client | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        self._collection_name = collection
        self._timeout = timeout_s
        self._client = Lazy(lambda: _client(project, database), client)
        self._rest = LazyEndpoint("firestore", timeout_s, endpoint)
        self._documents = f"projects/{project}/databases/{database}/documents"
        # single-document writes from concurrent requests, batched (``batchWrite``)
        self._writes: GroupCall[dict[str, Any], WriteResult] = GroupCall(
            "firestore",
            self._batch_write,
            max_items=_BATCH_WRITES,
            wait_s=3 * timeout_s,
            keys=lambda write: (write["update"]["name"],),
        )
        # groups of creates that must land together, from concurrent requests: one commit
        self._groups: GroupCall[tuple[dict[str, Any], ...], list[ServerTime] | None] = GroupCall(
            "firestore",
            self._commit_groups,
            max_items=_COMMIT_GROUPS,
            wait_s=3 * timeout_s,
            keys=lambda writes: tuple(w["update"]["name"] for w in writes),
        )

    def warm(self, connections: int = 1) -> list[threading.Thread]:
        """Open ``connections`` connections (and ask for the token) ahead of the first
        call, in threads (:meth:`hookpress.wire.Endpoint.warm`)."""
        return self._rest().warm(connections)

    # -- transports --------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The Firestore client library (queries only), built on first use."""
        return self._client()

    def _batch_write(self, writes: Sequence[dict[str, Any]]) -> list[WriteResult | BackendError]:
        """One ``batchWrite``: each write applied or refused on its own, not atomically.

        https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/batchWrite
        """
        answer = self._rest().request(
            "POST",
            f"/v1/{self._documents}:batchWrite",
            json_body({"writes": list(writes)}),
            {"Content-Type": "application/json"},
        )
        if answer.status != 200:
            raise BackendError("firestore", error_status(answer))
        try:
            data = answer.json()
            results = data.get("writeResults", [])
            statuses = data.get("status", [])
            out: list[WriteResult | BackendError] = []
            for i in range(len(writes)):
                code = statuses[i].get("code", 0) if i < len(statuses) else 0
                name = _CODES.get(code, f"CODE_{code}")
                if name == "OK":
                    out.append((ServerTime.parse(results[i]["updateTime"]), ""))
                elif name in _LOST:
                    out.append((None, name))
                else:
                    out.append(BackendError("firestore", name))
            return out
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError("firestore", "unreadable batchWrite response") from None

    def collection(self, name: str | None = None) -> CollectionReference:
        """The events collection, or another one of the same database (client library)."""
        return self.client.collection(name or self._collection_name)

    def _name(self, key: str, collection: str | None = None) -> str:
        return f"{self._documents}/{collection or self._collection_name}/{key}"

    def _commit(self, write: dict[str, Any]) -> tuple[ServerTime | None, str]:
        """Commit one write: its update time, or None and the error status."""
        stamps, error = self._committed(self._send_commit([write]).result(), 1)
        return (stamps[0] if stamps else None), error

    def _send_commit(self, writes: Sequence[dict[str, Any]]) -> Pending:
        return self._rest().send(
            "POST",
            f"/v1/{self._documents}:commit",
            json_body({"writes": list(writes)}),
            {"Content-Type": "application/json"},
        )

    @staticmethod
    def _committed(answer: Answer, count: int) -> tuple[list[ServerTime] | None, str]:
        """A commit's answer: its ``count`` update times, or None and the error status."""
        if answer.status != 200:
            return None, error_status(answer)
        try:
            results = answer.json()["writeResults"]
            return [ServerTime.parse(results[i]["updateTime"]) for i in range(count)], ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError("firestore", "unreadable commit response") from None

    def _commit_groups(
        self, groups: Sequence[tuple[dict[str, Any], ...]]
    ) -> list[list[ServerTime] | BackendError | None]:
        """Commit every group's creates in one commit; per group, its update times, or
        None if one of its documents existed (then none of its writes is applied).

        A commit is all or nothing, so one group's existing document refuses the
        whole commit (409 ``ALREADY_EXISTS``; or 400, a write refused). Then each
        group is committed on its own, all sent at once, and only the group that
        met a document answers None. Anything else (a 5xx, a timeout) fails every
        group, as it would have failed each on its own.
        """
        answer = self._send_commit([w for group in groups for w in group]).result()
        stamps, error = self._committed(answer, sum(len(g) for g in groups))
        if stamps is not None:
            out: list[list[ServerTime] | BackendError | None] = []
            for group in groups:
                out.append(stamps[: len(group)])
                del stamps[: len(group)]
            return out
        if len(groups) > 1 and answer.status in _WRITE_REFUSED:
            sent: list[Pending | BackendError] = []
            for group in groups:
                try:
                    sent.append(self._send_commit(group))
                except BackendError as exc:
                    sent.append(exc)
            return [self._group_outcome(p, len(g)) for p, g in zip(sent, groups, strict=True)]
        return [self._outcome(None, error)] * len(groups)

    def _group_outcome(
        self, sent: Pending | BackendError, count: int
    ) -> list[ServerTime] | BackendError | None:
        if isinstance(sent, BackendError):
            return sent
        try:
            return self._outcome(*self._committed(sent.result(), count))
        except BackendError as exc:
            return exc

    @staticmethod
    def _outcome(
        stamps: list[ServerTime] | None, error: str
    ) -> list[ServerTime] | BackendError | None:
        """A group's result: its update times, None if a document existed, or the error."""
        if stamps is not None or error == "ALREADY_EXISTS":
            return stamps
        return BackendError("firestore", error)

    @staticmethod
    def _write(
        name: str, fields: dict[str, Any], *, mask: bool, precondition: dict[str, Any] | None
    ) -> dict[str, Any]:
        values = {k: v for k, v in fields.items() if not isinstance(v, Increment)}
        write: dict[str, Any] = {"update": {"name": name, "fields": encode_fields(values)}}
        if mask:
            write["updateMask"] = {"fieldPaths": [_field_path(k) for k in values]}
        transforms = [
            {"fieldPath": _field_path(k), "increment": {"integerValue": str(v.by)}}
            for k, v in fields.items()
            if isinstance(v, Increment)
        ]
        if transforms:
            write["updateTransforms"] = transforms
        if precondition is not None:
            write["currentDocument"] = precondition
        return write

    # -- per-event operations (REST) -----------------------------------------------------

    @property
    def collection_name(self) -> str:
        """The events collection's name."""
        return self._collection_name

    def create(
        self, key: str, record: dict[str, Any], collection: str | None = None
    ) -> datetime | None:
        """Create ``key`` if absent: its update time, or None if it already existed.

        Batched with the creates (and deferred marks) of concurrent requests.
        """
        write = self._write(
            self._name(key, collection), record, mask=False, precondition={"exists": False}
        )
        stamp, error = self._writes(write)
        if stamp is not None:
            return stamp
        if error == "ALREADY_EXISTS":
            return None
        raise BackendError("firestore", error)

    def create_all(
        self, documents: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[datetime] | None:
        """Create every ``(key, fields, collection)`` in one atomic commit, each only if
        absent: their update times, or None if any one existed (then none is written).

        A commit's writes are "always executed atomically and in order"
        (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/commit).
        Concurrent requests' groups share one commit (:meth:`_commit_groups`);
        at concurrency 1 it is this group's own.
        """
        writes = tuple(
            self._write(
                self._name(key, collection), fields, mask=False, precondition={"exists": False}
            )
            for key, fields, collection in documents
        )
        stamps = self._groups(writes)
        return list(stamps) if stamps is not None else None

    def get(self, key: str, collection: str | None = None) -> Snapshot | None:
        """The record, or None."""
        return self.start_get(key, collection)()

    def start_get(self, key: str, collection: str | None = None) -> Callable[[], Snapshot | None]:
        """Send :meth:`get`'s read now; the returned call waits for it (another call to
        another host, or this one on a second connection, can go out meanwhile)."""
        pending = self._rest().send("GET", f"/v1/{self._name(key, collection)}")
        return lambda: self._snapshot(key, pending.result())

    @staticmethod
    def _snapshot(key: str, answer: Answer) -> Snapshot | None:
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise BackendError("firestore", error_status(answer))
        try:
            doc = answer.json()
            return Snapshot(
                key=key,
                data=decode_fields(doc.get("fields", {})),
                update_time=ServerTime.parse(doc["updateTime"]),
            )
        except (ValueError, KeyError, TypeError):
            raise BackendError("firestore", "unreadable document") from None

    def transition(
        self, key: str, expected_update_time: datetime, fields: dict[str, Any]
    ) -> datetime | None:
        """Update only if unchanged since ``expected_update_time``; None if someone else won."""
        write = self._write(
            self._name(key),
            fields,
            mask=True,
            precondition={"updateTime": rfc3339(expected_update_time)},
        )
        stamp, error = self._commit(write)
        if stamp is not None:
            return stamp
        if error in {"FAILED_PRECONDITION", "NOT_FOUND"}:
            return None
        raise BackendError("firestore", error)

    def transition_later(
        self,
        key: str,
        expected_update_time: datetime,
        fields: dict[str, Any],
        on_failure: Callable[[BackendError], None] | None = None,
    ) -> None:
        """:meth:`transition`, sent with the next batch of writes; nobody waits for it.

        A lost precondition is silent (someone else moved the record on: their
        status stands); a failure of the write itself goes to ``on_failure``.
        """
        self.send_later(self.later_write(key, fields), expected_update_time, on_failure)

    def later_write(self, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The update :meth:`transition_later` sends, built ahead (no precondition yet)."""
        return self._write(self._name(key), fields, mask=True, precondition=None)

    def send_later(
        self,
        write: dict[str, Any],
        expected_update_time: datetime,
        on_failure: Callable[[BackendError], None] | None = None,
    ) -> None:
        """Queue a :meth:`later_write`, conditional on ``expected_update_time``."""
        conditional = {**write, "currentDocument": {"updateTime": rfc3339(expected_update_time)}}
        self._writes.later(conditional, on_failure)

    def set(self, key: str, fields: dict[str, Any], collection: str | None = None) -> None:
        """Merge ``fields`` into the document (created if absent)."""
        write = self._write(self._name(key, collection), fields, mask=True, precondition=None)
        stamp, error = self._commit(write)
        if stamp is None:
            raise BackendError("firestore", error)

    @staticmethod
    def increment(n: int) -> Any:
        """A server-side increment, for ``set``/``transition``/``update_unless`` fields."""
        return Increment(n)

    def update_unless(
        self,
        key: str,
        fields: dict[str, Any],
        *,
        unless_status: str | frozenset[str],
        known: Snapshot | None = None,
    ) -> bool:
        """Update ``key`` unless its status is ``unless_status`` (one status or a set of them;
        read, then a conditional write).

        False when the record is missing or already in such a status (for
        instance: a failure must never overwrite a concurrent ``delivered``).
        The write is conditional on the update time just read, so a change in
        between makes it read again: the same guarantee as a transaction.
        ``known``: the record as the caller read it a moment ago; the first write
        is conditional on its update time (no read), and only a record that moved
        on since is read again.
        """
        guarded = {unless_status} if isinstance(unless_status, str) else unless_status
        if (
            known is not None
            and known.data.get("status") not in guarded
            and self.transition(key, known.update_time, fields) is not None
        ):
            return True
        for _ in range(_CONTENTION_RETRIES):
            snapshot = self.get(key)
            if snapshot is None or snapshot.data.get("status") in guarded:
                return False
            if self.transition(key, snapshot.update_time, fields) is not None:
                return True
        raise BackendError("firestore", "contention")

    # -- queries (client library) ----------------------------------------------------

    def with_status(self, status: str, updated_before: datetime, limit: int) -> list[Snapshot]:
        """Records in ``status`` not updated since ``updated_before``, oldest first.

        Needs the composite index (status, updated_at) the Pulumi program creates.
        """
        from google.api_core.retry import Retry
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
                for doc in query.stream(timeout=self._timeout, retry=Retry(timeout=self._timeout))
            ]
        except _library_errors() as exc:
            raise BackendError("firestore", type(exc).__name__) from None
