"""A candidate of issue 12, measured, not what the ingress runs: its work in ASGI mode.

functions-framework's ASGI mode (``functions_framework.aio``: Starlette under
uvicorn's gunicorn worker, ``FUNCTION_USE_ASGI=1``) serves a request on one
event loop with no thread hand-off; the bare 202 costs about half the CPU of
the Flask mode's (bench/results/candidates.md). Whether that carries over to
the ingress's own work is what this measures: the same verification, parsing,
event key, stored forms and log line as ``hookpress.ingress`` (its own
functions, called as it calls them), and the same backend calls with the same
bytes: the GCS upload ∥ the record's create (concurrent creates grouped into one
``batchWrite``, the previous events' ``published`` marks riding along; for a
GitHub or Shopify event, the body marker and the record created in one atomic
``commit``, concurrent ones grouped into one commit, as the ingress does since
runs 18 and 19), then the publish (grouped likewise). The
wire is a minimal asyncio HTTP/1.1 client, plain HTTP to the emulators only.

Left out, so the figure is a floor for an ASGI ingress, not its cost: every
failure path (503s, retries, timeouts, the duplicate and republish paths,
claims, the mark's precondition failing), the marks' flusher, TLS and tokens.
``nox -s bench -- --only ingress --asgi-candidate`` serves it beside the
ingress, taking turns with the other fronts.

``served_calls`` is a yardstick for it (``--yardsticks``): ``bench/served_calls.py``'s
floor in this mode, the three calls in DESIGN's order on this module's wire and
nothing of the ingress's own work.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from bench.served_calls import Floor
from hookpress.backends._json import json_body
from hookpress.backends._rest import endpoint_url
from hookpress.backends.firestore import EventRecords
from hookpress.backends.gcs import create_only_upload_path, multipart_upload
from hookpress.backends.pubsub import event_message
from hookpress.events import (
    bodies_collection,
    body_marker,
    event_key,
    message_attributes,
    valid_id,
)
from hookpress.ingress import Ingestor, build_ingestor
from hookpress.ingress._pipeline import stored_forms
from hookpress.logs import trace_field
from hookpress.payloads import MalformedBody, parse_payload
from hookpress.providers import PROVIDERS
from hookpress.settings import IngressSettings, SourceConfig
from hookpress.signatures import SCHEMES, SignatureError

_BATCH = 100
_TIMEOUT_S = 10.0  # the ingress's backend timeout


class _Endpoint:
    """Kept-alive plain HTTP/1.1 connections to one emulator."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        async with asyncio.timeout(_TIMEOUT_S):
            return await self._request(method, path, body, content_type)

    async def _request(
        self, method: str, path: str, body: bytes, content_type: str
    ) -> tuple[int, bytes]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer owner\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status = int((await reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = "close" in value.lower()
        if chunked:
            chunks = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            data = b"".join(chunks)
        else:
            data = await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, data


class _Group:
    """Concurrent items go in one call: the first sends at once, those that arrive while
    a call is in flight go together in the next (``hookpress.backends._batch``'s rule)."""

    def __init__(self, send: Callable[[list[Any]], Awaitable[Sequence[Any]]]) -> None:
        self._send = send
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._busy = False

    async def __call__(self, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every waiter hears of it
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._busy = False


class _Backends:
    def __init__(self, ingestor: Ingestor) -> None:
        import os

        settings = ingestor.settings
        self.gcs = _Endpoint(endpoint_url("gcs", os.environ)[0])
        self.firestore = _Endpoint(endpoint_url("firestore", os.environ)[0])
        self.pubsub = _Endpoint(endpoint_url("pubsub", os.environ)[0])
        self.bucket = settings.raw_bucket
        self.documents = (
            f"projects/{settings.project}/databases/{settings.firestore_database}/documents"
        )
        self.collection = settings.events_collection
        self.topic = f"/v1/projects/{settings.project}/topics/{settings.events_topic}:publish"
        self.marks: list[dict[str, Any]] = []  # the published marks, riding with the next write
        self.writes = _Group(self._batch_write)
        self.commits = _Group(self._commit_groups)
        self.publishes = _Group(self._publish)

    def document(self, key: str, collection: str | None = None) -> str:
        return f"{self.documents}/{collection or self.collection}/{key}"

    async def _batch_write(self, writes: list[dict[str, Any]]) -> list[str | None]:
        marks, self.marks = self.marks[: _BATCH - len(writes)], self.marks[_BATCH - len(writes) :]
        status, data = await self.firestore.request(
            "POST", f"/v1/{self.documents}:batchWrite", json_body({"writes": writes + marks})
        )
        if status != 200:
            raise RuntimeError(f"firestore HTTP {status}")
        answer = json.loads(data)
        codes = answer.get("status", [])
        results = answer["writeResults"]
        return [
            results[i].get("updateTime")
            if not (i < len(codes) and codes[i].get("code", 0))
            else None
            for i in range(len(writes))
        ]

    async def _commit(self, writes: list[dict[str, Any]]) -> tuple[int, list[str] | None]:
        status, data = await self.firestore.request(
            "POST", f"/v1/{self.documents}:commit", json_body({"writes": writes})
        )
        if status == 200:
            return status, [r["updateTime"] for r in json.loads(data)["writeResults"]]
        return status, None

    async def _commit_groups(
        self, groups: list[tuple[dict[str, Any], ...]]
    ) -> list[list[str] | None]:
        """Every group's creates in one commit; if a document existed (all or nothing),
        each group on its own, all at once (``EventRecords._commit_groups``'s rule)."""
        status, stamps = await self._commit([w for group in groups for w in group])
        if stamps is not None:
            out: list[list[str] | None] = []
            for group in groups:
                out.append(stamps[: len(group)])
                del stamps[: len(group)]
            return out
        if status not in (400, 409):
            raise RuntimeError(f"firestore HTTP {status}")
        if len(groups) == 1:
            return [None]
        alone = await asyncio.gather(*(self._commit(list(group)) for group in groups))
        return [stamps for _, stamps in alone]

    async def create_all(
        self, documents: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[str] | None:
        """Create every document in one atomic commit, each only if absent (or None)."""
        writes = tuple(
            EventRecords._write(
                self.document(key, collection), fields, mask=False, precondition={"exists": False}
            )
            for key, fields, collection in documents
        )
        return await self.commits(writes)  # type: ignore[no-any-return]

    async def create(
        self, key: str, record: dict[str, Any], collection: str | None = None
    ) -> str | None:
        write = EventRecords._write(
            self.document(key, collection), record, mask=False, precondition={"exists": False}
        )
        return await self.writes(write)  # type: ignore[no-any-return]

    async def get(self, key: str, collection: str) -> dict[str, Any] | None:
        status, data = await self.firestore.request("GET", f"/v1/{self.document(key, collection)}")
        return json.loads(data) if status == 200 else None

    async def put(self, name: str, body: bytes, metadata: dict[str, str]) -> bool:
        data, content_type = multipart_upload(name, body, metadata)
        status, _ = await self.gcs.request(
            "POST", create_only_upload_path(self.bucket), data, content_type
        )
        if status not in (200, 412):
            raise RuntimeError(f"gcs HTTP {status}")
        return status == 200

    async def _publish(self, messages: list[dict[str, Any]]) -> list[str]:
        body = json.dumps({"messages": messages}, separators=(",", ":")).encode()
        status, data = await self.pubsub.request("POST", self.topic, body)
        if status != 200:
            raise RuntimeError(f"pubsub HTTP {status}")
        return [str(i) for i in json.loads(data)["messageIds"]]

    async def publish(self, key: str, source: str, attributes: dict[str, str]) -> str:
        return await self.publishes(event_message(key, source, attributes))  # type: ignore[no-any-return]


_state: dict[str, Any] = {}
_ids = itertools.count()
_tag = secrets.token_hex(4)


def _started() -> tuple[Ingestor, _Backends]:
    """The instance's runtime, built by its first request (as the ingress's is)."""
    if not _state:
        ingestor = build_ingestor(__import__("os").environ)
        _state.update(ingestor=ingestor, backends=_Backends(ingestor))
    return _state["ingestor"], _state["backends"]


def _answer(status: int, body: dict[str, Any]) -> Response:
    payload = json.dumps(body, separators=(",", ":"))
    return Response(
        payload,
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@functions_framework.aio.http  # type: ignore[misc]
async def ingress(request: Request) -> Response:
    """Verify, store, publish: the accepted path of ``hookpress.ingress`` on one event loop."""
    started = time.perf_counter()
    ingestor, backends = _started()
    settings = ingestor.settings
    name = request.url.path.strip("/")
    source = settings.sources.get(name)
    if source is None or request.method != "POST":
        return _answer(404, {"status": "rejected", "error": "unknown source"})
    body = await request.body()
    headers = dict(request.headers.items())
    now = time.time()
    try:
        verified = SCHEMES[source.scheme].verify(
            body,
            headers,
            ingestor.secrets.get(source.secret),
            now=now,
            tolerance=source.tolerance_s or settings.timestamp_tolerance_s,
            url=source.url,
        )
        payload = parse_payload(body, verified.body_format)
    except (SignatureError, MalformedBody):
        return _answer(401, {"status": "rejected", "error": "invalid signature"})
    provider = PROVIDERS[source.provider]
    pid = provider.event_id(verified.delivery_id, headers, payload, body)
    received_at = datetime.fromtimestamp(now, UTC)
    event_type = provider.event_type(headers, payload)
    if provider.id_unsigned:
        # The ingress's protocol (``Ingestor._first_copy``): the body's marker and the record
        # in one atomic commit while the upload is on the wire; only if either existed, the
        # first copy's id is read and the event stored under it.
        marker = body_marker(source.name, body, pid, received_at, settings.event_ttl_days)
        collection = bodies_collection(settings.events_collection)
        key = event_key(source.name, pid)
        stored_name, record, metadata = _forms(
            settings, source, pid, key, body, received_at, event_type, verified.body_format
        )
        _, stamps = await asyncio.gather(
            backends.put(stored_name, body, metadata),
            backends.create_all([(*marker, collection), (key, record, None)]),
        )
        if stamps is not None:
            return await _publish_and_answer(
                backends, ingestor, name, source.name, key, record, stamps[1], headers, started
            )
        first = await backends.get(marker[0], collection)
        known = ((first or {}).get("fields", {}).get("provider_event_id") or {}).get("stringValue")
        pid = known if isinstance(known, str) and valid_id(known) else pid
    key = event_key(source.name, pid)
    stored_name, record, metadata = _forms(
        settings, source, pid, key, body, received_at, event_type, verified.body_format
    )
    _, created = await asyncio.gather(
        backends.put(stored_name, body, metadata), backends.create(key, record)
    )
    if created is None:
        return _answer(200, {"status": "duplicate", "event_id": key})
    return await _publish_and_answer(
        backends, ingestor, name, source.name, key, record, created, headers, started
    )


def _forms(
    settings: IngressSettings,
    source: SourceConfig,
    pid: str,
    key: str,
    body: bytes,
    received_at: datetime,
    event_type: str | None,
    body_format: str,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The object's name, the record (claimed by its creator) and the object's metadata."""
    stored_name, record, metadata = stored_forms(
        source,
        pid,
        key,
        body,
        received_at,
        lambda n: f"gs://{settings.raw_bucket}/{n}",
        ttl_days=settings.event_ttl_days,
        event_type=event_type,
        body_format=body_format,
    )
    record["publish_claimed_at"] = received_at
    return stored_name, record, metadata


async def _publish_and_answer(
    backends: _Backends,
    ingestor: Ingestor,
    name: str,
    source: str,
    key: str,
    record: dict[str, Any],
    created: str,
    headers: dict[str, str],
    started: float,
) -> Response:
    """Publish the new event, queue its ``published`` mark to ride along, log, 202."""
    received_at = record["received_at"]
    mark = EventRecords._write(
        backends.document(key),
        {"status": "published", "published_at": received_at, "updated_at": received_at},
        mask=True,
        precondition=None,
    )
    await backends.publish(key, source, message_attributes(record))
    backends.marks.append({**mark, "currentDocument": {"updateTime": created}})
    settings = ingestor.settings
    ingestor.log.log(
        "INFO",
        "ingress accepted",
        source=name[:64],
        event_key=key,
        outcome="accepted",
        http_status=202,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        trace=trace_field(settings.project, headers),
    )
    return _answer(202, {"status": "accepted", "event_id": key})


@functions_framework.aio.http  # type: ignore[misc]
async def served_calls(request: Request) -> Response:
    """The floor's three calls for this body (the upload ∥ the create, then the publish), 202."""
    ingestor, backends = _started()
    if "floor" not in _state:
        _state["floor"] = Floor(ingestor.settings)  # for its forms: its clients stay unused
    floor: Floor = _state["floor"]
    source = ingestor.settings.sources[request.url.path.strip("/")]
    body = await request.body()
    pid = f"asgi-served-{_tag}-{next(_ids)}"
    key, name, record, metadata, attributes = floor.forms(source, pid, body)
    await asyncio.gather(backends.put(name, body, metadata), backends.create(key, record))
    await backends.publish(key, source.name, attributes)
    return _answer(202, {"status": "accepted", "event_id": key})
