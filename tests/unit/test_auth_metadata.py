"""The access token straight from the metadata server, held to google-auth's own request.

On Cloud Run hookpress asks the metadata server itself instead of importing
google-auth's discovery (``backends/_auth.py``). google-auth's compute-engine
credentials, pointed at the same stand-in (tests/metadata_server.py), are the
oracle: the token request must be theirs (path, scopes, ``Metadata-Flavor``),
and the token the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hookpress.backends import BackendError
from hookpress.backends._auth import SCOPES, AccessTokens, _UrllibRequest, metadata_host
from tests.metadata_server import MetadataStandIn


@pytest.fixture
def metadata() -> Iterator[MetadataStandIn]:
    server = MetadataStandIn()
    yield server
    server.stop()


def test_where_the_token_comes_from() -> None:
    assert metadata_host({}) is None  # not on Cloud Run: google-auth's discovery
    assert metadata_host({"K_SERVICE": "hookpress-ingress"}) == "metadata.google.internal"
    assert metadata_host({"K_SERVICE": "x", "GCE_METADATA_HOST": "127.0.0.1:8"}) == "127.0.0.1:8"
    # a key file configured on purpose wins, as it does for google-auth
    assert metadata_host({"K_SERVICE": "x", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}) is None


def test_our_token_request_is_google_auths(
    metadata: MetadataStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", metadata.host)  # read at its import
    theirs = compute_engine.Credentials(scopes=list(SCOPES))
    theirs.refresh(_UrllibRequest())
    [theirs_seen] = [r for r in metadata.requests if "/token" in r.path]
    metadata.requests.clear()

    ours = AccessTokens(metadata_host=metadata.host)
    assert ours() == f"Bearer {theirs.token}" == f"Bearer {metadata.token}"
    [ours_seen] = metadata.requests
    assert (ours_seen.method, ours_seen.path) == (theirs_seen.method, theirs_seen.path)
    flavors = {ours_seen.headers.get("Metadata-Flavor"), theirs_seen.headers.get("Metadata-Flavor")}
    assert flavors == {"Google"}


def test_the_token_is_kept_until_five_minutes_before_it_expires(
    metadata: MetadataStandIn,
) -> None:
    tokens = AccessTokens(metadata_host=metadata.host)
    assert tokens() == tokens() == f"Bearer {metadata.token}"
    assert len(metadata.requests) == 1
    metadata.expires_in = 200  # under five minutes: every call asks again
    short = AccessTokens(metadata_host=metadata.host)
    short()
    short()
    assert len(metadata.requests) == 3


@pytest.mark.parametrize("status", [403, 404, 500])
def test_a_refused_token_is_a_backend_error(metadata: MetadataStandIn, status: int) -> None:
    metadata.status = status
    with pytest.raises(BackendError) as info:
        AccessTokens(metadata_host=metadata.host)()
    assert (info.value.backend, info.value.detail) == ("auth", f"metadata_HTTP_{status}")


def test_an_unreachable_metadata_server_is_a_backend_error() -> None:
    with pytest.raises(BackendError) as info:
        AccessTokens(metadata_host="127.0.0.1:9")()
    assert info.value.backend == "auth"
