"""Access tokens for the JSON API calls: fetched as in the cloud, cached, refreshed early."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth import exceptions as auth_exc

from hookpress.backends import BackendError
from hookpress.backends._auth import AccessTokens, LazyEndpoint, service_endpoint
from hookpress.backends._rest import Endpoint


class Metadata:
    """A stand-in for the metadata server (https://cloud.google.com/compute/docs/metadata/overview)."""

    def __init__(self) -> None:
        self.token_requests = 0
        self.seen: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append({k.lower(): v for k, v in self.headers.items()})
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.send_error(403)
                    return
                if self.path.startswith(
                    "/computeMetadata/v1/instance/service-accounts/default/token"
                ):
                    outer.token_requests += 1
                    body = {
                        "access_token": f"token-{outer.token_requests}",
                        "expires_in": 3599,
                        "token_type": "Bearer",
                    }
                elif self.path.startswith("/computeMetadata/v1/instance/service-accounts/default/"):
                    body = {
                        "email": "ingress@p.iam.gserviceaccount.com",
                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                        "aliases": ["default"],
                    }
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> Iterator[Metadata]:
    from google.auth.compute_engine import _metadata

    server = Metadata()
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", server.host)
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_cloud_instance_sends_its_metadata_server_token(metadata):
    """google-auth's own compute-engine credentials, refreshed through our urllib transport."""
    from google.auth import compute_engine

    from tests.unit.test_rest import Backend

    tokens = AccessTokens(credentials=compute_engine.Credentials())
    backend = Backend()
    backend.thread.start()
    try:
        endpoint = Endpoint("gcs", backend.url, 5, tokens)
        endpoint.request("GET", "/a")
        endpoint.request("GET", "/b")
    finally:
        backend.server.shutdown()
        backend.server.server_close()
    assert [r[2]["Authorization"] for r in backend.requests] == ["Bearer token-1"] * 2
    assert metadata.token_requests == 1  # cached, not fetched per request


def test_an_emulator_gets_what_the_client_libraries_send_it():
    """Firestore's emulator reads ``Bearer owner`` as admin; GCS and Pub/Sub get no header."""
    from tests.unit.test_rest import Backend

    backend = Backend()
    backend.thread.start()
    host = backend.url.removeprefix("http://")
    env = {
        "FIRESTORE_EMULATOR_HOST": host,
        "PUBSUB_EMULATOR_HOST": host,
        "STORAGE_EMULATOR_HOST": backend.url,
    }
    try:
        for service in ("firestore", "pubsub", "gcs"):
            service_endpoint(service, 5, env).request("GET", f"/{service}")
    finally:
        backend.server.shutdown()
        backend.server.server_close()
    sent = {path: headers.get("Authorization") for _, path, headers, _ in backend.requests}
    assert sent == {"/firestore": "Bearer owner", "/pubsub": None, "/gcs": None}


def test_a_cloud_endpoint_is_the_public_api_with_the_instance_token():
    endpoint = service_endpoint("pubsub", 5, {})
    assert endpoint._host == "pubsub.googleapis.com"
    assert endpoint._https
    assert isinstance(endpoint._authorization, AccessTokens)


def test_an_adapter_endpoint_is_the_one_given_else_one_made_on_first_use(monkeypatch):
    given = Endpoint("pubsub", "http://127.0.0.1:9", 5, lambda: None)
    assert LazyEndpoint("pubsub", 5, given)() is given

    made: list[Endpoint] = []
    gate = threading.Barrier(8)

    def make(service: str, timeout_s: float) -> Endpoint:
        made.append(Endpoint(service, "http://127.0.0.1:9", timeout_s, lambda: None))
        return made[-1]

    monkeypatch.setattr("hookpress.backends._auth.service_endpoint", make)
    lazy = LazyEndpoint("gcs", 7, None)
    assert made == []  # nothing made, no credentials looked up, until a call needs it
    seen: list[Endpoint] = []

    def first_call() -> None:
        gate.wait()
        seen.append(lazy())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1  # concurrent first calls share one endpoint (one connection pool)
    assert all(e is made[0] for e in seen)
    assert len(seen) == 8


class FakeCredentials:
    def __init__(self, lifetime_s: float, fail: bool = False) -> None:
        self.lifetime = lifetime_s
        self.fail = fail
        self.refreshes = 0
        self.token: str | None = None
        self.expiry: datetime | None = None

    def refresh(self, request: object) -> None:
        if self.fail:
            raise auth_exc.RefreshError("metadata server unreachable")
        self.refreshes += 1
        self.token = f"t{self.refreshes}"
        # google-auth keeps expiry as a naive UTC datetime
        self.expiry = (datetime.now(UTC) + timedelta(seconds=self.lifetime)).replace(tzinfo=None)


def test_a_token_is_reused_until_five_minutes_before_it_expires():
    creds = FakeCredentials(lifetime_s=3600)
    tokens = AccessTokens(credentials=creds, request=object())
    assert tokens() == "Bearer t1"
    assert tokens() == "Bearer t1"
    assert creds.refreshes == 1


def test_a_token_close_to_expiry_is_refreshed_on_next_use():
    creds = FakeCredentials(lifetime_s=200)  # already inside the five-minute margin
    tokens = AccessTokens(credentials=creds, request=object())
    assert tokens() == "Bearer t1"
    assert tokens() == "Bearer t2"


def test_a_failed_refresh_is_a_backend_error():
    tokens = AccessTokens(credentials=FakeCredentials(3600, fail=True), request=object())
    with pytest.raises(BackendError) as err:
        tokens()
    assert err.value.backend == "auth"
