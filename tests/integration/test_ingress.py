"""The ingress status table, row by row, through the real entry point and real emulators.

Each test asserts what landed in each backend: the object's bytes and sha256,
the Firestore record, the published message - or that nothing landed at all.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from hookpress.events import event_key
from tests.integration.conftest import (
    SECRETS,
    Backends,
    Body,
    call_asgi,
    http_client,
    signed,
    unique_body,
)

ALL_SCHEMES = sorted(SECRETS)


def post(client: Any, source: str, body: bytes, headers: dict[str, str], **kw: Any) -> Any:
    return client.post(f"/{source}", content=body, headers=headers, **kw)


# -- 202 accepted ------------------------------------------------------------------


@pytest.mark.parametrize("source", ALL_SCHEMES)
def test_accepted_event_is_durable_and_published(client, backends: Backends, source: str):
    body = unique_body(source, data={"amount": 4200})
    resp = post(client, source, body, signed(source, body))

    assert resp.status_code == 202
    answer = resp.json()
    assert answer["status"] == "accepted"
    key = answer["event_id"]

    # the key is sha256(source:provider id): the delivery header where the scheme has one
    record = backends.record(key)
    assert record is not None
    assert key == event_key(source, record["provider_event_id"])
    if source in {"standard-webhooks", "github", "shopify"}:
        assert record["provider_event_id"] != json.loads(body)["id"]
    elif source != "slack":
        assert record["provider_event_id"] == json.loads(body)["id"]

    # GCS holds exactly the bytes received, under raw/{source}/{yyyy}/{mm}/{dd}/{key}.json
    day = time.strftime("%Y/%m/%d", time.gmtime())
    name = f"raw/{source}/{day}/{key}.json"
    assert record["raw_uri"] == f"gs://hookpress-raw-test/{name}"
    stored = backends.object(name)
    assert stored == body
    assert hashlib.sha256(stored).hexdigest() == record["body_sha256"]
    # enough to rebuild the record from the bucket alone (replay from GCS)
    metadata = backends.bucket.get_blob(name).metadata
    assert metadata["provider_event_id"] == record["provider_event_id"]
    assert metadata["scheme"] == source
    assert datetime.fromisoformat(metadata["received_at"]) == record["received_at"]

    # published before the 202; the record says so a moment later (marked off the path)
    record = backends.wait_status(key, "published")
    assert record["attempts"] == 0
    assert record["source"] == source
    assert (record["expire_at"] - record["received_at"]).days == 30

    messages = backends.messages()
    assert [json.loads(m.data) for m in messages] == [{"event_key": key}]
    assert messages[0].attributes["source"] == source


def test_slack_uses_event_id_and_answers_the_url_handshake(client, backends: Backends):
    body = json.dumps({"type": "event_callback", "event_id": f"Ev{time.monotonic_ns()}"}).encode()
    resp = post(client, "slack", body, signed("slack", body))
    assert resp.status_code == 202
    record = backends.record(resp.json()["event_id"])
    assert record["provider_event_id"] == json.loads(body)["event_id"]

    before = backends.record_keys()
    hello = json.dumps({"type": "url_verification", "challenge": "3eZbrw1a"}).encode()
    resp = post(client, "slack", hello, signed("slack", hello))
    assert resp.status_code == 200
    assert resp.json() == {"challenge": "3eZbrw1a"}
    assert backends.record_keys() == before


# -- 200 duplicate -------------------------------------------------------------------


def test_same_event_again_is_a_duplicate_and_not_republished(client, backends: Backends):
    body = unique_body()
    headers = signed("stripe", body)
    first = post(client, "stripe", body, headers)
    second = post(client, "stripe", body, headers)
    # a re-signed copy (new timestamp) is the same event too
    third = post(client, "stripe", body, signed("stripe", body, now=time.time() + 5))
    assert first.status_code == 202
    assert second.status_code == 200
    assert third.status_code == 200
    key = first.json()["event_id"]
    assert second.json() == {"status": "duplicate", "event_id": key}
    assert third.json()["event_id"] == key
    assert len(backends.messages()) == 1


def test_concurrent_copies_publish_once(app, ingestor, backends: Backends):
    from hookpress import ingress

    ingress.install(ingestor)
    body = unique_body()
    headers = signed("github", body, delivery_id=f"d-{time.monotonic_ns()}")

    def send(_: int) -> int:
        return int(http_client(app).post("/github", content=body, headers=headers).status_code)

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(send, range(8)))
    ingress.install(None)
    assert codes == [200] * 7 + [202]
    assert len(backends.messages()) == 1


# -- 4xx: nothing stored, nothing published -----------------------------------------


def assert_nothing_landed(backends: Backends, before: tuple[set[str], set[str]]) -> None:
    assert (backends.object_names(), backends.record_keys()) == before
    assert backends.messages(settle_s=0.5) == []


def snapshot(backends: Backends) -> tuple[set[str], set[str]]:
    return backends.object_names(), backends.record_keys()


MALFORMED = {
    "not json": b"this is not json",
    "array": b'[{"id": "a"}]',
    "string": b'"evt"',
    "nested 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "duplicate keys": b'{"id": "a", "id": "b"}',
    "NaN": b'{"id": "a", "x": NaN}',
    "Infinity": b'{"id": "a", "x": Infinity}',
    "lone surrogate": b'{"id": "a", "x": "\\ud800"}',
    "invalid utf-8": b'{"id": "\xff"}',
    "CR/LF in the payload id": b'{"id": "a\\r\\nb"}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_body_is_400(client, backends: Backends, case: str):
    before = snapshot(backends)
    body = MALFORMED[case]
    resp = post(client, "stripe", body, signed("stripe", body))
    assert resp.status_code == 400
    assert resp.json() == {"status": "rejected", "error": "malformed body"}
    assert_nothing_landed(backends, before)


def sw(body: bytes, **override: str) -> dict[str, str]:
    headers = signed("standard-webhooks", body, delivery_id="msg_fixed")
    headers.update(override)
    return {k: v for k, v in headers.items() if v != "<drop>"}


NOW = int(time.time())
UNAUTHORIZED = {
    "v1 without comma": {"webhook-signature": "v1"},
    "v1,a,b": {"webhook-signature": "v1,a,b"},
    "invalid base64": {"webhook-signature": "v1,!!!not-base64!!!"},
    "wrong signature": {"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
    "timestamp non-numeric": {"webhook-timestamp": "soon"},
    "timestamp float": {"webhook-timestamp": f"{NOW}.5"},
    "timestamp negative": {"webhook-timestamp": f"-{NOW}"},
    "timestamp too old": {"webhook-timestamp": str(NOW - 3600)},
    "timestamp in the future": {"webhook-timestamp": str(NOW + 3600)},
    "missing signature": {"webhook-signature": "<drop>"},
    "missing timestamp": {"webhook-timestamp": "<drop>"},
    "missing id": {"webhook-id": "<drop>"},
}


@pytest.mark.parametrize("case", sorted(UNAUTHORIZED))
def test_signature_failures_are_one_generic_401(client, backends: Backends, case: str):
    before = snapshot(backends)
    body = unique_body()
    resp = post(client, "standard-webhooks", body, sw(body, **UNAUTHORIZED[case]))
    assert resp.status_code == 401
    assert resp.json() == {"status": "rejected", "error": "invalid signature"}
    assert_nothing_landed(backends, before)


@pytest.mark.parametrize("source", ALL_SCHEMES)
def test_missing_headers_are_401_for_every_scheme(client, backends: Backends, source: str):
    before = snapshot(backends)
    body = unique_body()
    resp = post(client, source, body, {"Content-Type": "application/json"})
    assert resp.status_code == 401
    assert_nothing_landed(backends, before)


def test_signature_is_checked_over_the_raw_bytes(client, backends: Backends):
    before = snapshot(backends)
    body = unique_body()
    headers = signed("stripe", body)
    reformatted = json.dumps(json.loads(body), indent=2).encode()  # same JSON, other bytes
    assert post(client, "stripe", reformatted, headers).status_code == 401
    assert_nothing_landed(backends, before)


def test_unknown_source_is_404(app, client, backends: Backends):
    before = snapshot(backends)
    body = unique_body()
    for path in ("/nope", "/", "/stripe/extra"):
        resp = client.post(path, content=body, headers=signed("stripe", body))
        assert resp.status_code == 404, path
        assert resp.json() == {"status": "rejected", "error": "unknown source"}
    # httpx would send this one as /stripe (it removes dot segments); a raw client need not,
    # and uvicorn hands the path on as sent
    dots = call_asgi(app, "POST", "/../stripe", signed("stripe", body), Body(body))
    assert dots.status == 404
    assert dots.json() == {"status": "rejected", "error": "unknown source"}
    assert_nothing_landed(backends, before)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, method: str):
    resp = client.request(method, "/stripe")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"


def test_body_over_the_limit_is_413_from_content_length(client, backends: Backends):
    before = snapshot(backends)
    body = b'{"id": "big", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    resp = post(client, "stripe", body, signed("stripe", body))
    assert resp.status_code == 413
    assert_nothing_landed(backends, before)


# The body's size a message here. uvicorn's messages are up to one socket read (256,000
# bytes under uvloop) plus its 64 KiB high-water mark: what the app takes past the limit
# is at most one message, whatever its size.
CHUNK = 64 * 1024


@pytest.mark.parametrize("declared", [None, "100"])
def test_body_over_the_limit_is_413_while_reading_even_when_the_length_lies(
    app, use, backends: Backends, declared: str | None
):
    """Chunked (no Content-Length) or a Content-Length that understates the body: a 16 MiB
    body handed to the app at the ASGI level, 64 KiB a message, counting what it took."""
    before = snapshot(backends)
    limit = use().settings.max_body_bytes
    body = Body(b"x" * (16 * 1024 * 1024), CHUNK)
    headers = {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=" + "a" * 64}
    if declared is None:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = declared
    resp = call_asgi(app, "POST", "/stripe", headers, body)
    assert resp.status == 413
    assert resp.json() == {"status": "rejected", "error": "body too large"}
    # read until just past the limit (it had to read to know), then stopped
    assert limit < body.handed_out <= limit + CHUNK
    # and told the server not to read the rest to find a next request on the connection
    assert resp.headers["connection"] == "close"
    assert_nothing_landed(backends, before)


def test_a_client_gone_mid_body_is_400_not_5xx(app, use, backends: Backends):
    """The connection dropped after part of the body: the server's next message is
    ``http.disconnect``. A truncated body, so malformed, never a 500 or a 503."""
    before = snapshot(backends)
    body = b'{"id": "evt_cut", "pad": "' + b"x" * (200 * 1024) + b'"}'
    headers = {**signed("stripe", body), "Content-Length": str(len(body))}
    cut = Body(body, CHUNK, disconnect_after=CHUNK)
    use()
    resp = call_asgi(app, "POST", "/stripe", headers, cut)
    assert cut.handed_out == CHUNK
    assert resp.status == 400
    assert resp.json() == {"status": "rejected", "error": "malformed body"}
    assert resp.headers["connection"] == "close"
    assert_nothing_landed(backends, before)


def test_compressed_body_is_415(client, backends: Backends):
    import gzip

    before = snapshot(backends)
    body = gzip.compress(unique_body())
    headers = {**signed("stripe", body), "Content-Encoding": "gzip"}
    resp = post(client, "stripe", body, headers)
    assert resp.status_code == 415
    assert_nothing_landed(backends, before)
    body = unique_body()
    resp = post(client, "stripe", body, {**signed("stripe", body), "Content-Encoding": "identity"})
    assert resp.status_code == 202


def test_rotation_takes_effect_without_a_restart(client, ingress_env, backends: Backends):
    """A secret added to the store is accepted at once: a failed check re-reads the secret."""
    from pathlib import Path

    path = Path(ingress_env["HOOKPRESS_SECRETS_FILE"])
    original = path.read_text()
    data = json.loads(original)
    data["src-shopify"] = ["shpss_rotated", *data["src-shopify"]]
    path.write_text(json.dumps(data))
    try:
        from hookpress.signatures import SCHEMES

        body = unique_body()
        headers = {"Content-Type": "application/json"}
        headers.update(SCHEMES["shopify"].sign(body, "shpss_rotated", now=time.time()))
        # the cache may be fresher than the minimum refresh interval: wait it out if so
        deadline = time.monotonic() + 40
        while (resp := post(client, "shopify", body, headers)).status_code == 401:
            assert time.monotonic() < deadline
            time.sleep(1)
        assert resp.status_code == 202
    finally:
        path.write_text(original)


def test_a_warmed_instance_sends_its_first_event_on_the_connections_opened_ahead(app, ingress_env):
    """The first request builds the runtime, which starts opening a connection to each of
    the three APIs of an event (and Secret Manager's, where secrets live there) while the
    event is read and verified; the event then goes out on those, opening none of its own."""
    from hookpress import ingress

    fresh = ingress.build_ingestor(ingress_env)
    threads = fresh.warm()
    assert sorted(t.name for t in threads) == ["warm-firestore", "warm-gcs", "warm-pubsub"]
    for thread in threads:
        thread.join(10)
    pools = {
        name: adapter._rest()._idle
        for name, adapter in (
            ("gcs", fresh.raw),
            ("firestore", fresh.records),
            ("pubsub", fresh.publisher),
        )
    }
    assert {name: len(idle) for name, idle in pools.items()} == {
        "gcs": 1,
        "firestore": 1,
        "pubsub": 1,
    }
    warmed = {name: idle[0] for name, idle in pools.items()}
    ingress.install(fresh)
    try:
        with http_client(app) as client:
            body = unique_body("warm")
            resp = client.post("/stripe", content=body, headers=signed("stripe", body))
    finally:
        ingress.install(None)
    assert resp.status_code == 202
    # each call went out on the warmed connection and gave it back: no second one opened
    # (the record's `published` mark may be on its way out on Firestore's a moment later)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(len(idle) != 1 for idle in pools.values()):
        time.sleep(0.05)
    assert pools == {name: [wire] for name, wire in warmed.items()}
