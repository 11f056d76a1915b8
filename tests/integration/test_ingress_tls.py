"""The ingress with every backend over TLS, as in the cloud, against the real emulators.

Locally the emulators speak plain HTTP, so every other test here leaves out what
the cloud's first requests do: make a TLS context, shake hands, verify the
server's certificate. Here each emulator sits behind an HTTPS front
(tests/tls_front.py), the process trusts the system's CA set with the fronts'
authority added (to the hashed CA directory and the bundle file alike), and
events arrive through the real entry point from many threads at once: the
process makes one TLS context between them, on the CA directory alone, and
reads no bundle (``hookpress.wire.system_tls``), and every event is stored and
published once.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from hookpress import ingress
from hookpress.backends._rest import _HOSTS, endpoint_url
from hookpress.local.emulators import Emulators
from tests.integration.conftest import Backends, http_client, signed, unique_body
from tests.local_http import Authority
from tests.tls_front import TLSFront, fresh_system_tls, trust_bundle, trust_directory

#: each emulated API and the variable that points its client at the emulator
EMULATED = {service: variable for service, (_, variable) in _HOSTS.items() if variable}


@pytest.fixture
def over_tls(emulators: Emulators, ingress_env, backends: Backends, monkeypatch, tmp_path):
    """An ingress whose endpoints reach each emulator through an HTTPS front; the fronts
    and the contexts the process made. After ``backends``: its clients read the emulator
    variables when they are made, and keep the plain addresses."""
    authority = Authority("hookpress test CA")
    fronts = {
        variable: TLSFront(endpoint_url(service, emulators.env)[0], authority, tmp_path / service)
        for service, variable in EMULATED.items()
    }
    for variable, front in fronts.items():
        monkeypatch.setenv(variable, front.url())
    monkeypatch.setenv("SSL_CERT_FILE", trust_bundle(authority, tmp_path / "bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", trust_directory(authority, tmp_path / "cas"))
    made = fresh_system_tls(monkeypatch)
    ingress.install(ingress.build_ingestor(ingress_env))  # endpoints made on first use
    try:
        yield fronts, made
    finally:
        ingress.install(None)
        for front in fronts.values():
            front.close()


def test_concurrent_events_over_tls_are_stored_and_published_once_with_one_context(
    app, over_tls, backends: Backends
):
    fronts, made = over_tls
    events = [
        (source, unique_body(f"tls-{i}"))
        for i, source in enumerate(["stripe", "github", "hmac-timestamp", "shopify"] * 6)
    ]

    def send(event: tuple[str, bytes]) -> tuple[int, dict[str, str]]:
        source, body = event
        resp = http_client(app).post(f"/{source}", content=body, headers=signed(source, body))
        return resp.status_code, resp.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, events))

    assert [status for status, _ in answers] == [202] * len(events)
    keys = {answer["event_id"] for _, answer in answers}
    assert len(keys) == len(events)
    for key in keys:
        record = backends.record(key)
        assert record is not None
        assert backends.object(urlsplit(record["raw_uri"]).path.lstrip("/")) is not None
    published = [json.loads(m.data)["event_key"] for m in backends.messages()]
    assert sorted(published) == sorted(keys)
    # one context for the process, on the CA directory alone; every backend reached over
    # TLS, through its front
    assert [kind for kind, _ in made] == ["directory"]
    assert all(front.connections >= 1 for front in fronts.values())
