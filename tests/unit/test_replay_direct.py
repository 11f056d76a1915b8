"""Replay straight into WordPress: concurrent posts share batch requests, each gets its answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hookpress.deliver import AuthenticationFailed, PermanentDeliveryError, RetryableDeliveryError
from hookpress.ops.direct import BatchingWordPress, probe

BASE = "https://wp.example/wp-json"


class FakeBatchRoute:
    """The plugin's batch route as a MockTransport handler: answers each record by a rule."""

    def __init__(self, answer: Callable[[dict[str, Any]], tuple[int, Any]] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self._answer = answer or (lambda record: (201, {"id": len(record["external_id"])}))
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/wp-json/ai-guy/v1/ingest/batch"
        payload = json.loads(request.content)
        with self._lock:
            self.requests.append(payload)
            self.auth.append(request.headers["Authorization"])
        responses = []
        for item in payload["records"]:
            status, body = self._answer(item["record"])
            responses.append({"status": status, "body": body, "headers": {}})
        return httpx.Response(207, json={"responses": responses})


def post_all(client: BatchingWordPress, count: int, password: str = "pw") -> list[Any]:  # noqa: S107
    """``count`` concurrent post() calls; each result or the exception it raised."""

    def one(n: int) -> Any:
        try:
            record = {"external_id": "e" * (n + 1), "n": n, "pw": password}
            return client.post(record, f"key-{n}", password)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_posts_become_one_batch_and_each_gets_its_own_answer() -> None:
    route = FakeBatchRoute()
    client = BatchingWordPress(BASE, "ingest", linger_s=0.5, transport=httpx.MockTransport(route))

    results = post_all(client, 40)

    assert [r.post_id for r in results] == [n + 1 for n in range(40)]
    assert all(r.status == 201 for r in results)
    assert sum(len(r["records"]) for r in route.requests) == 40
    assert len(route.requests) <= 3, "posts made at the same time share requests"
    keys = [item["idempotency_key"] for r in route.requests for item in r["records"]]
    assert sorted(keys) == sorted(f"key-{n}" for n in range(40))


def test_a_full_batch_leaves_at_once_and_never_exceeds_the_limit() -> None:
    route = FakeBatchRoute()
    client = BatchingWordPress(
        BASE, "ingest", max_records=10, linger_s=30, transport=httpx.MockTransport(route)
    )

    results = post_all(client, 30)

    assert all(r.status == 201 for r in results)
    assert [len(r["records"]) for r in route.requests] == [10, 10, 10]


def test_each_record_is_classified_as_deliver_classifies_a_single_answer() -> None:
    def answer(record: dict[str, Any]) -> tuple[int, Any]:
        return {0: (201, {"id": 7}), 1: (400, {"code": "rest_invalid_param"}), 2: (429, {})}[
            record["n"]
        ]

    client = BatchingWordPress(
        BASE, "ingest", transport=httpx.MockTransport(FakeBatchRoute(answer))
    )

    ok, rejected, limited = post_all(client, 3)

    assert ok.post_id == 7
    assert isinstance(rejected, PermanentDeliveryError)
    assert rejected.status == 400
    assert isinstance(limited, RetryableDeliveryError)
    assert limited.status == 429


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (401, AuthenticationFailed, "wordpress_unauthorized"),
        (403, PermanentDeliveryError, "wordpress_rejected"),
        (503, RetryableDeliveryError, "wordpress_unavailable"),
        (302, PermanentDeliveryError, "redirect_not_followed"),
        # A plugin without the batch route is no verdict on the events.
        (404, RetryableDeliveryError, "batch_route_missing"),
    ],
)
def test_a_batch_refused_whole_gives_every_record_that_answer(
    status: int, expected: type[Exception], reason: str
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json={"code": "x"}))
    client = BatchingWordPress(BASE, "ingest", transport=transport)

    results = post_all(client, 4)

    assert all(type(r) is expected for r in results), results
    assert {r.reason for r in results} == {reason}


def test_no_answer_is_retryable_for_every_record() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = BatchingWordPress(BASE, "ingest", transport=httpx.MockTransport(broken))

    results = post_all(client, 3)

    assert all(isinstance(r, RetryableDeliveryError) for r in results)


def test_an_unreadable_batch_answer_is_retryable_not_a_verdict() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(207, json={"responses": []}))
    client = BatchingWordPress(BASE, "ingest", transport=transport)

    results = post_all(client, 2)

    assert all(isinstance(r, RetryableDeliveryError) for r in results)
    assert {r.reason for r in results} == {"batch_unreadable"}


def test_records_sent_with_different_passwords_never_share_a_request() -> None:
    route = FakeBatchRoute()
    client = BatchingWordPress(BASE, "ingest", linger_s=0.3, transport=httpx.MockTransport(route))

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(post_all, client, 5, "old")
        second = pool.submit(post_all, client, 5, "new")
        results = first.result() + second.result()

    assert all(r.status == 201 for r in results)
    assert len(set(route.auth)) == 2
    for request, auth in zip(route.requests, route.auth, strict=True):
        passwords = {item["record"]["pw"] for item in request["records"]}
        assert len(passwords) == 1, "one request, one password"
        assert auth == httpx.BasicAuth("ingest", passwords.pop())._auth_header


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, None),
        (403, "this address is not on the plugin's allowlist"),
        (401, "the ingest credentials were refused"),
        (404, "the plugin has no batch route (update it)"),
        (500, "the batch route answered HTTP 500"),
    ],
)
def test_the_probe_says_why_the_batch_route_cannot_be_used(
    status: int, expected: str | None
) -> None:
    seen: list[Any] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, json={})

    with httpx.Client(transport=httpx.MockTransport(route)) as client:
        assert probe(client, BASE, "ingest", "pw") == expected
    assert seen == [{"records": []}], "the probe stores nothing"
