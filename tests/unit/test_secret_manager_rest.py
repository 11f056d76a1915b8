"""Secret Manager over its REST API, against a stand-in held to the client library's view.

The stand-in (tests/secretmanager_rest.py) answers as the API reference documents;
the library's own REST transport reading and writing it is the oracle that the
stand-in's paths, fields and shapes are the real API's. hookpress's client
(``SecretManagerREST``) is then tested against the same stand-in, including the
failures a cloud instance can meet: error answers, 429/503 retried within the
timeout, a payload whose checksum does not match, nothing listening.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hookpress.backends import BackendError
from hookpress.backends._rest import Endpoint
from hookpress.backends.secrets import (
    CachedSecrets,
    SecretManagerREST,
    SecretManagerValues,
    SecretManagerWriter,
)
from tests.local_http import Seen, json_reply
from tests.secretmanager_rest import PROJECT_NUMBER, SecretManagerStandIn, crc32c

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stand_in() -> Iterator[SecretManagerStandIn]:
    server = SecretManagerStandIn(project="p")
    yield server
    server.stop()


def _ours(stand_in: SecretManagerStandIn, timeout: float = 5.0) -> SecretManagerREST:
    return SecretManagerREST(Endpoint("secretmanager", stand_in.url, timeout))


def _library(stand_in: SecretManagerStandIn):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=stand_in.url),
    )


def _calls(requests: list[Seen]) -> list[tuple[str, str, dict[str, list[str]]]]:
    """Method, path and query of each request, the query's order and ``$alt`` aside."""
    out = []
    for seen in requests:
        url = urlsplit(seen.path)
        query = {k: v for k, v in parse_qs(url.query).items() if not k.startswith("$")}
        out.append((seen.method, url.path, query))
    return out


def test_crc32c_is_castagnoli() -> None:
    from hookpress.backends.secrets import _crc32c

    assert _crc32c(b"123456789") == 0xE3069283 == crc32c(b"123456789")  # the check value
    assert _crc32c(b"") == 0


def test_every_enabled_version_newest_first_across_pages(stand_in: SecretManagerStandIn) -> None:
    for value, state in [("v1", "ENABLED"), ("v2", "DISABLED"), ("v3", "ENABLED")]:
        stand_in.add("s", value, state)
    stand_in.add("s", "v4")
    stand_in.add("s", "v5")
    values = SecretManagerValues("p", 5, client=_ours(stand_in))
    assert values.fetch("s") == ("v5", "v4", "v3", "v1")
    lists = [q for m, path, q in _calls(stand_in.requests) if path.endswith("/versions")]
    assert len(lists) == 2  # two pages of (at most) two
    assert all(q["filter"] == ["state:ENABLED"] for q in lists)
    assert "pageToken" in lists[1]
    # each version accessed by the name the API gave it (the project's number)
    accessed = [p for m, p, _ in _calls(stand_in.requests) if p.endswith(":access")]
    assert accessed[0] == f"/v1/projects/{PROJECT_NUMBER}/secrets/s/versions/5:access"


def test_the_client_library_over_rest_reads_what_we_read(stand_in: SecretManagerStandIn) -> None:
    """The oracle: the library's REST transport parses every answer with the API schema."""
    stand_in.add("s", "one")
    stand_in.add("s", "two", "DISABLED")
    stand_in.add("s", " three\n")
    library = _library(stand_in)
    names = [
        v.name
        for v in library.list_secret_versions(
            request={"parent": "projects/p/secrets/s", "filter": "state:ENABLED"}
        )
    ]
    theirs = [
        library.access_secret_version(request={"name": n}).payload.data.decode().strip()
        for n in sorted(names, key=lambda n: int(n.rsplit("/", 1)[1]), reverse=True)
    ]
    library_calls = _calls(stand_in.requests)
    stand_in.requests.clear()
    ours = SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("s")
    assert ours == tuple(theirs) == ("three", "one")
    our_calls = _calls(stand_in.requests)
    # the same calls: same methods and paths, the same filter (the page size is ours)
    assert [(m, p) for m, p, _ in our_calls] == [(m, p) for m, p, _ in library_calls]
    assert our_calls[0][2]["filter"] == library_calls[0][2]["filter"] == ["state:ENABLED"]


def test_what_we_write_the_library_reads_and_the_other_way(stand_in: SecretManagerStandIn) -> None:
    stand_in.add("s", "old")
    writer = SecretManagerWriter("p", 5, client=_ours(stand_in))
    assert writer.add_version("s", "new") == "2"
    add = stand_in.requests[-1]
    assert add.method == "POST"
    assert urlsplit(add.path).path == "/v1/projects/p/secrets/s:addVersion"
    library = _library(stand_in)
    latest = library.access_secret_version(request={"name": "projects/p/secrets/s/versions/2"})
    assert latest.payload.data == b"new"
    assert latest.payload.data_crc32c == crc32c(b"new")  # our checksum went with it
    assert writer.disable_older("s", keep=1) == ["1"]
    enabled = library.list_secret_versions(
        request={"parent": "projects/p/secrets/s", "filter": "state:ENABLED"}
    )
    assert [v.name.rsplit("/", 1)[1] for v in enabled] == ["2"]
    library.add_secret_version(
        request={"parent": "projects/p/secrets/s", "payload": {"data": b"third"}}
    )
    assert writer.fetch("s") == ("third", "new")


def test_a_payload_whose_checksum_does_not_match_is_refused(stand_in: SecretManagerStandIn) -> None:
    stand_in.add("s", "value")
    stand_in.corrupt_checksum = True
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("s")
    assert (info.value.backend, info.value.detail) == ("secretmanager", "checksum_mismatch")


@pytest.mark.parametrize(
    ("status", "name"),
    [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"), (500, "INTERNAL")],
)
def test_an_error_answer_is_a_backend_error_naming_it(
    stand_in: SecretManagerStandIn, status: int, name: str
) -> None:
    stand_in.add("s", "value")
    for script in ([status], [200, status]):  # the list refused; the access (after the list)
        stand_in.server.script = list(script)
        with pytest.raises(BackendError) as info:
            SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("s")
        assert (info.value.backend, info.value.detail) == ("secretmanager", name)
        assert stand_in.server.script == []
    writer = SecretManagerWriter("p", 5, client=_ours(stand_in))
    stand_in.server.script = [status]
    with pytest.raises(BackendError):
        writer.add_version("s", "x")
    stand_in.server.script = [status]
    with pytest.raises(BackendError):
        writer.disable_older("s")


def test_an_unknown_secret_is_not_found(stand_in: SecretManagerStandIn) -> None:
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("missing")
    assert info.value.detail == "NOT_FOUND"


def test_429_and_503_are_retried_within_the_timeout(stand_in: SecretManagerStandIn) -> None:
    stand_in.add("s", "value")
    stand_in.server.script = [503, 429]
    assert SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("s") == ("value",)
    stand_in.server.script = [503] * 10_000
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 1.5, client=_ours(stand_in, timeout=1.5)).fetch("s")
    assert info.value.detail == "UNAVAILABLE"
    assert time.monotonic() - started < 10  # the timeout, not the library's 60 s default


def test_nothing_listening_is_a_backend_error() -> None:
    client = SecretManagerREST(Endpoint("secretmanager", "http://127.0.0.1:9", 2))
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 2, client=client).fetch("s")
    assert info.value.backend == "secretmanager"


def test_an_answer_that_is_not_the_documented_json_is_a_backend_error(
    stand_in: SecretManagerStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in.add("s", "value")
    monkeypatch.setattr(stand_in, "_list", lambda *_: json_reply(200, {"versions": [{}]}))
    with pytest.raises(BackendError) as info:
        SecretManagerValues("p", 5, client=_ours(stand_in)).fetch("s")
    assert (info.value.backend, info.value.detail) == ("secretmanager", "KeyError")


def test_a_failed_token_is_a_backend_error_and_no_request_is_sent(
    stand_in: SecretManagerStandIn,
) -> None:
    def no_token() -> str:
        raise BackendError("auth", "RefreshError")

    client = SecretManagerREST(Endpoint("secretmanager", stand_in.url, 5, no_token))
    cached = CachedSecrets(
        SecretManagerValues("p", 5, client=client), ttl_s=300, min_refresh_interval_s=30
    )
    with pytest.raises(BackendError) as info:
        cached.get("s")
    assert (info.value.backend, info.value.detail) == ("auth", "RefreshError")
    assert stand_in.requests == []


def test_the_token_goes_with_every_call(stand_in: SecretManagerStandIn) -> None:
    stand_in.add("s", "value")
    client = SecretManagerREST(Endpoint("secretmanager", stand_in.url, 5, lambda: "Bearer t0k"))
    SecretManagerValues("p", 5, client=client).fetch("s")
    assert {r.headers.get("Authorization") for r in stand_in.requests} == {"Bearer t0k"}


def test_a_cloud_instances_secret_read_imports_no_client_library(
    stand_in: SecretManagerStandIn, tmp_path: Path
) -> None:
    """The deployed configuration's first secret read, token included: the standard
    library and hookpress only (no gRPC, no google-api-core, no google-auth)."""
    from tests.metadata_server import MetadataStandIn

    stand_in.add("s", "value")
    metadata = MetadataStandIn()
    probe = f"""
import json, sys
before = set(sys.modules)  # namespace packages a site .pth file loads at start-up
from hookpress.backends._auth import default_tokens
from hookpress.backends._rest import Endpoint
from hookpress.backends.secrets import SecretManagerREST, SecretManagerValues
client = SecretManagerREST(Endpoint("secretmanager", {stand_in.url!r}, 5, default_tokens()))
values = SecretManagerValues("p", 5, client=client).fetch("s")
loaded = sorted(
    m for m in set(sys.modules) - before
    if m.split(".")[0] in ("google", "grpc", "proto", "requests", "urllib3")
)
print(json.dumps({{"values": values, "loaded": loaded}}))
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "functions"),
        "K_SERVICE": "hookpress-ingress",
        "GCE_METADATA_HOST": metadata.host,
    }
    try:
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        metadata.stop()
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"values": ["value"], "loaded": []}
    assert {r.headers.get("Authorization") for r in stand_in.requests} == {
        f"Bearer {metadata.token}"
    }


def test_a_warmed_cache_reads_on_the_connection_opened_ahead(stand_in):
    # The ingress warms Secret Manager while its first event is read: a connection (and the
    # token, asked of an endpoint that has one) made before the first read needs them.
    stand_in.add("s", "one")
    values = SecretManagerValues("p", 5.0, client=_ours(stand_in))
    secrets = CachedSecrets(values, ttl_s=300, min_refresh_interval_s=30)
    threads = secrets.warm()
    assert [t.name for t in threads] == ["warm-secretmanager"]
    for thread in threads:
        thread.join(10)
    deadline = time.monotonic() + 5  # connected; the server's thread takes it a moment later
    while stand_in.server.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stand_in.server.connections == 1
    assert stand_in.requests == []  # nothing sent ahead: only connected
    assert secrets.get("s") == ("one",)
    assert stand_in.server.connections == 1  # the list and the access on that connection
