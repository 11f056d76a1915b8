"""Every provider through the real ingress entry point and the emulators: its own signature,
its own body format, its id, and the message attributes lanes and the warehouse read."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from google.cloud import pubsub_v1
from starlette.testclient import TestClient

from hookpress import ingress
from hookpress.backends.pubsub import message_data
from hookpress.local.emulators import Emulators
from hookpress.local.stack import generate_keys
from hookpress.ops.sending import example_payload, sign_request
from hookpress.providers import PROVIDERS
from tests.integration.conftest import TOPIC, http_client

PUBLIC = "https://hooks.example.com/hookpress"
SOURCES: dict[str, dict[str, Any]] = {
    f"p-{name}": {"provider": name, "lane": "high" if name == "twilio" else "normal"}
    for name in PROVIDERS
}
SOURCES["p-v1a"] = {"provider": "standard-webhooks", "lane": "bulk"}
KEYS = {
    name: generate_keys(spec["provider"], ed25519=name == "p-v1a") for name, spec in SOURCES.items()
}


@pytest.fixture(scope="module")
def provider_ingestor(emulators: Emulators, tmp_path_factory, ingress_env) -> ingress.Ingestor:
    secrets_file = tmp_path_factory.mktemp("provider-secrets") / "secrets.json"
    secrets_file.write_text(json.dumps({f"s-{n}": [k.verify] for n, k in KEYS.items()}))
    sources = {
        name: {**spec, "secret": f"s-{name}", **({"url": f"{PUBLIC}/{name}"})}
        for name, spec in SOURCES.items()
    }
    env = {
        **ingress_env,
        "HOOKPRESS_SOURCES": json.dumps(sources),
        "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        "HOOKPRESS_MESSAGE_PAYLOAD": "true",
    }
    return ingress.build_ingestor(env)


@pytest.fixture
def provider_client(app: Any, provider_ingestor: ingress.Ingestor) -> Iterator[TestClient]:
    ingress.install(provider_ingestor)
    with http_client(app) as client:
        yield client
    ingress.install(None)


def _pull(backends, key: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = backends.subscriber.pull(
            request={"subscription": backends.subscription, "max_messages": 50}, timeout=10
        )
        if response.received_messages:
            backends.subscriber.acknowledge(
                request={
                    "subscription": backends.subscription,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
        for received in response.received_messages:
            if received.message.attributes.get("event_key") == key:
                return received.message
    raise AssertionError(f"no message for {key}")


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_each_provider_is_accepted_stored_and_published_with_its_attributes(
    provider_client, backends, source
):
    spec = SOURCES[source]
    provider = spec["provider"]
    body = example_payload(provider, time.time(), f"{time.monotonic_ns():016x}"[-16:])
    request = sign_request(
        source=source,
        scheme=provider,
        secret=KEYS[source].sign,
        body=body,
        now=time.time(),
        url=f"{PUBLIC}/{source}",
    )
    response = provider_client.post(f"/{source}", content=body, headers=request.headers)
    assert response.status_code == 202, response.json()
    key = response.json()["event_id"]
    stored = backends.db.collection("events").document(key).get().to_dict()
    assert key == request.event_key, (stored["provider_event_id"], request.provider_id)
    record = backends.db.collection("events").document(key).get().to_dict()
    assert record["provider"] == provider
    assert record["lane"] == spec["lane"]
    assert record["body_format"] == ("form" if provider == "twilio" else "json")
    assert record["provider_event_id"] == request.provider_id
    message = _pull(backends, key)
    assert message.attributes["lane"] == spec["lane"]
    assert message.attributes["provider"] == provider
    assert message.attributes["source"] == source
    assert message.attributes["received_at"]
    assert message.attributes.get("type") == (record.get("event_type") or None)
    data = json.loads(message.data)
    assert data["event_key"] == key
    assert isinstance(data["payload"], dict), "the warehouse asked for the payload"
    again = provider_client.post(f"/{source}", content=body, headers=request.headers)
    assert again.status_code == 200


def test_a_twilio_form_with_a_duplicate_field_is_a_400_not_a_401(provider_client):
    body = urlencode([("MessageSid", "SM1"), ("MessageSid", "SM2")]).encode()
    request = sign_request(
        source="p-twilio",
        scheme="twilio",
        secret=KEYS["p-twilio"].sign,
        body=body,
        now=time.time(),
        url=f"{PUBLIC}/p-twilio",
    )
    response = provider_client.post("/p-twilio", content=body, headers=request.headers)
    assert response.status_code == 400


def test_twilio_signs_the_public_url_with_the_request_query(provider_client):
    body = urlencode({"MessageSid": "SMq", "MessageStatus": "sent"}).encode()
    query = "tenant=acme"
    request = sign_request(
        source="p-twilio",
        scheme="twilio",
        secret=KEYS["p-twilio"].sign,
        body=body,
        now=time.time(),
        url=f"{PUBLIC}/p-twilio?{query}",
    )
    ok = provider_client.post(f"/p-twilio?{query}", content=body, headers=request.headers)
    assert ok.status_code == 202, ok.json()
    moved = provider_client.post("/p-twilio?tenant=other", content=body, headers=request.headers)
    assert moved.status_code == 401


def test_a_message_without_a_payload_is_only_the_key():
    assert json.loads(message_data("k" * 64)) == {"event_key": "k" * 64}


def test_the_emulator_ignores_subscription_filters(emulators: Emulators):
    """The measurement behind hookpress/local/lanerouter.py: filters are stored, not applied."""
    from hookpress.lanes import lane_filter

    subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
    topic = f"projects/{emulators.project}/topics/{TOPIC}"
    lanes = ("high", "normal", "bulk")
    stamp = time.monotonic_ns()
    paths = {
        lane: subscriber.subscription_path(emulators.project, f"lanes-{lane}-{stamp}")
        for lane in lanes
    }
    for lane, path in paths.items():
        subscriber.create_subscription(
            request={"name": path, "topic": topic, "filter": lane_filter(lane, lanes)}
        )
    try:
        for lane in lanes:
            publisher.publish(topic, b"{}", lane=lane, probe=str(stamp)).result(timeout=10)
        for lane, path in paths.items():
            assert subscriber.get_subscription(request={"subscription": path}).filter == (
                lane_filter(lane, lanes)
            )
            got: set[str] = set()
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                pulled = subscriber.pull(request={"subscription": path, "max_messages": 10})
                got |= {m.message.attributes["lane"] for m in pulled.received_messages}
            # If this ever fails, the emulator started honouring filters: drop the gate.
            assert got == set(lanes), (lane, got)
    finally:
        for path in paths.values():
            subscriber.delete_subscription(request={"subscription": path})
