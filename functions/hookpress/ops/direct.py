"""Replay straight into WordPress, up to a hundred events a request.

``hookpress replay`` normally republishes event keys to Pub/Sub and the
deliver function posts each one (one event per push: that does not change).
When it sends many events it can deliver them itself through the plugin's
batch route instead, saving WordPress a bootstrap and an authentication per
event. Nothing about delivery is re-implemented here: the deliver function's
own :class:`~hookpress.deliver.Deliverer` runs for each event (transform,
pause switch, breaker, the outcome written on the record), and
:class:`BatchingWordPress` stands in for its WordPress client: the
``post()`` calls made at the same time by the events of one round become one
``POST ai-guy/v1/ingest/batch``, and each call gets its own record's answer,
classified by the same :func:`~hookpress.deliver.classify` as a single answer.

The batch route sits behind the same allowlist as the single route: from a
laptop that is not on it, :func:`probe` says so and replay republishes
instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from hookpress.deliver import (
    Deliverer,
    DeliveryError,
    Outcome,
    Result,
    RetryableDeliveryError,
    WordPressClient,
    classify,
)

# Not in hookpress.deliver's public surface, but the types its own calls take and return.
from hookpress.deliver._envelope import PushMessage
from hookpress.deliver._wordpress import Delivered

__all__ = [
    "BATCH_ROUTE",
    "MAX_BATCH",
    "BatchingWordPress",
    "DirectDelivery",
    "outcome_text",
    "probe",
]

BATCH_ROUTE = "/ai-guy/v1/ingest/batch"
#: Records per batch request: the plugin's limit.
MAX_BATCH = 100
#: Encoded records per batch request, under the plugin's 256 KiB body limit with room
#: for the envelope: records beyond it go in the next request.
MAX_BATCH_BYTES = 200 * 1024


@dataclass
class _Pending:
    record: dict[str, Any]
    key: str
    password: str
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Delivered | DeliveryError | None = None


class BatchingWordPress(WordPressClient):
    """A WordPressClient whose concurrent ``post()`` calls share batch requests.

    A call waits until its record has been sent: by the call that filled the
    batch (``max_records`` records or ``MAX_BATCH_BYTES``), or by itself once
    ``linger_s`` passed without that happening. Thread-safe.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        max_records: int = MAX_BATCH,
        linger_s: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            user,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        if not 1 <= max_records <= MAX_BATCH:
            raise ValueError(f"max_records must be between 1 and {MAX_BATCH}")
        self.batch_url = base_url.rstrip("/") + BATCH_ROUTE
        self._batch_user = user
        self._max = max_records
        self._linger = linger_s
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._http = httpx.Client(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "hookpress-replay", "Accept": "application/json"},
            transport=transport,
        )
        self.requests = 0  # batch requests sent (for reports and tests)

    def post(self, record: dict[str, Any], idempotency_key: str, password: str) -> Delivered:
        """Deliver one record as part of a batch; raise a DeliveryError as deliver would."""
        size = len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
        mine = _Pending(record, idempotency_key, password, size)
        with self._cond:
            self._pending.append(mine)
            full = self._take(full_only=True)
        if full:
            self._send(full)
        deadline = time.monotonic() + self._linger
        while not mine.done.wait(max(0.0, deadline - time.monotonic())):
            with self._cond:
                batch = self._take(full_only=False) if not mine.done.is_set() else []
            if batch:
                self._send(batch)
            deadline = time.monotonic() + self._linger
        if isinstance(mine.result, Delivered):
            return mine.result
        if isinstance(mine.result, DeliveryError):
            raise mine.result
        raise RetryableDeliveryError("batch_lost")  # pragma: no cover - every path sets one

    def close(self) -> None:
        """Close both pools."""
        self._http.close()
        super().close()

    def _take(self, *, full_only: bool) -> list[_Pending]:
        """Remove and return a batch of one password's records (caller holds the lock)."""
        if not self._pending:
            return []
        password = self._pending[0].password
        batch: list[_Pending] = []
        size = 0
        for item in self._pending:
            if item.password != password:
                continue
            if batch and (len(batch) == self._max or size + item.size > MAX_BATCH_BYTES):
                break
            batch.append(item)
            size += item.size
        is_full = (
            len(batch) == self._max
            or size >= MAX_BATCH_BYTES
            or len(batch) < len([p for p in self._pending if p.password == password])
        )
        if full_only and not is_full:
            return []
        for item in batch:
            self._pending.remove(item)
        return batch

    def _send(self, batch: list[_Pending]) -> None:
        """One batch request; every record of it gets its answer."""
        payload = {"records": [{"idempotency_key": p.key, "record": p.record} for p in batch]}
        content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        self.requests += 1
        try:
            response = self._http.post(
                self.batch_url,
                content=content,
                headers={"Content-Type": "application/json"},
                auth=httpx.BasicAuth(self._batch_user, batch[0].password),
            )
            results = _answers(response, len(batch))
        except httpx.TimeoutException:
            results = [RetryableDeliveryError("wordpress_timeout")] * len(batch)
        except httpx.TransportError as exc:
            results = [RetryableDeliveryError(f"wordpress_{type(exc).__name__}")] * len(batch)
        for item, result in zip(batch, results, strict=True):
            item.result = result
            item.done.set()


def _answers(response: httpx.Response, count: int) -> list[Delivered | DeliveryError]:
    """Each record's outcome from a batch response."""
    status = response.status_code
    if status != 207:
        # Refused whole (401, 403 allowlist, 413, 429, 5xx …): every record the same.
        # A missing route (404/405: a plugin older than the batch route) is no
        # verdict on the events: retry, do not fail them.
        if status in (404, 405):
            missing = RetryableDeliveryError("batch_route_missing", status, response.text[:200])
            return [missing] * count
        return [_classified(status, response.text)] * count
    try:
        answers: Any = response.json()["responses"]
    except (ValueError, KeyError, TypeError):
        return [RetryableDeliveryError("batch_unreadable", status)] * count
    if not isinstance(answers, list) or len(answers) != count:
        return [RetryableDeliveryError("batch_unreadable", status)] * count
    results: list[Delivered | DeliveryError] = []
    for answer in answers:
        if not isinstance(answer, Mapping) or not isinstance(answer.get("status"), int):
            results.append(RetryableDeliveryError("batch_unreadable", status))
            continue
        body = json.dumps(answer.get("body"), separators=(",", ":"), ensure_ascii=False)
        results.append(_classified(int(answer["status"]), body))
    return results


def _classified(status: int, body: str) -> Delivered | DeliveryError:
    try:
        return classify(status, body)
    except DeliveryError as exc:
        return exc


def probe(client: httpx.Client, base_url: str, user: str, password: str) -> str | None:
    """Whether this machine may use the batch route: None when it may, else why not.

    An empty batch is refused by the route's schema (400) once the access
    checks passed: it stores nothing (and spends one token of the bucket).
    """
    try:
        response = client.post(
            base_url.rstrip("/") + BATCH_ROUTE,
            json={"records": []},
            auth=httpx.BasicAuth(user, password),
        )
    except httpx.HTTPError as exc:
        return f"WordPress did not answer ({type(exc).__name__})"
    if response.status_code == 400:
        return None
    reasons = {
        401: "the ingest credentials were refused",
        403: "this address is not on the plugin's allowlist",
        404: "the plugin has no batch route (update it)",
    }
    status = response.status_code
    return reasons.get(status, f"the batch route answered HTTP {status}")


@dataclass
class DirectDelivery:
    """Delivers rounds of event keys with a Deliverer whose client batches."""

    deliverer: Deliverer
    workers: int = MAX_BATCH

    def deliver(self, keys: Iterable[str]) -> list[tuple[str, Result]]:
        """Deliver these events at once (their WordPress posts share batch requests)."""
        keys = list(keys)
        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(keys))) as pool:
            results = list(pool.map(self._one, keys))
        return list(zip(keys, results, strict=True))

    def _one(self, key: str) -> Result:
        return self.deliverer.deliver(PushMessage(key, None, None, None))


def outcome_text(result: Result) -> str:
    """A short account of a direct delivery, for the replay report."""
    if result.outcome is Outcome.DELIVERED:
        return f"delivered straight to WordPress (HTTP {result.downstream_status})"
    parts = [result.outcome.value]
    if result.reason:
        parts.append(result.reason)
    if result.downstream_status:
        parts.append(f"HTTP {result.downstream_status}")
    return ": ".join(parts[:1]) + (f" ({', '.join(parts[1:])})" if parts[1:] else "")
