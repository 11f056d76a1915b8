"""The benchmark's HTTPS fronts (tests/tls_front.py): our wire through one, verified; a
handshake held, then let go ahead or dropped."""

from __future__ import annotations

import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from hookpress.backends import BackendError
from hookpress.backends._rest import Endpoint
from tests.local_http import Authority, ScriptedServer, json_reply
from tests.tls_front import TLSFront, trust_bundle, trust_directory


@pytest.fixture
def behind():
    server = ScriptedServer(lambda seen, status: json_reply(status, {"path": seen.path}))
    yield server
    server.close()


def _through_front(behind, authority, tmp_path, tls, bodies):
    """POST each of ``bodies`` through a front before ``behind``, trusting it with ``tls``."""
    front = TLSFront(behind.url(), authority, tmp_path / "front")
    try:
        endpoint = Endpoint("gcs", front.url("/base"), 5, tls=tls)
        answers = [endpoint.request("POST", f"/o/{i}", body) for i, body in enumerate(bodies)]
    finally:
        front.close()
    return front, answers


def test_requests_through_the_front_reach_the_plain_server_on_one_connection(behind, tmp_path):
    authority = Authority("bench CA")
    bundle = trust_bundle(authority, tmp_path / "bundle.pem")
    front, answers = _through_front(
        behind,
        authority,
        tmp_path,
        lambda: ssl.create_default_context(cafile=bundle),
        [b"x" * 70_000] * 3,
    )
    assert [a.json() for a in answers] == [{"path": f"/base/o/{i}"} for i in range(3)]
    assert [len(seen.content) for seen in behind.requests] == [70_000] * 3
    assert (front.connections, behind.connections) == (1, 1)
    # the bundle is the system's CAs and the authority's: as many to parse as in the cloud
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert ssl.create_default_context(cafile=bundle).cert_store_stats()["x509_ca"] == system + 1


def test_a_client_that_does_not_trust_the_front_is_refused(behind, tmp_path):
    front = TLSFront(behind.url(), Authority("bench CA"), tmp_path / "front")
    try:
        with pytest.raises(BackendError):
            Endpoint("gcs", front.url(), 5, tls=ssl.create_default_context).request("GET", "/")
    finally:
        front.close()
    assert not behind.requests


def test_the_ca_directory_holds_the_systems_cas_and_the_authority(behind, tmp_path):
    authority = Authority("bench CA")
    cas = trust_directory(authority, tmp_path / "cas")
    _, answers = _through_front(
        behind, authority, tmp_path, lambda: ssl.create_default_context(capath=cas), [b"{}"]
    )
    assert [a.status for a in answers] == [200]
    # every hashed entry of the system's directory is there too, as in the cloud
    system = ssl.get_default_verify_paths().openssl_capath
    hashed = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")
    in_system = {p.name for p in Path(system).iterdir() if hashed.match(p.name)}
    in_ours = {p.name for p in Path(cas).iterdir() if hashed.match(p.name)}
    assert len(in_system) > 100
    assert len(in_ours - in_system) == 1  # the authority's
    assert in_system <= in_ours


def _held_front(behind, tmp_path):
    """A front before ``behind`` that holds handshakes, and an endpoint that trusts it."""
    authority = Authority("bench CA")
    bundle = trust_bundle(authority, tmp_path / "bundle.pem")
    front = TLSFront(behind.url(), authority, tmp_path / "front")
    front.hold()
    endpoint = Endpoint(
        "gcs", front.url(), 5, tls=partial(ssl.create_default_context, cafile=bundle)
    )
    return front, endpoint


def test_a_held_handshake_waits_for_release_and_then_carries_the_request(behind, tmp_path):
    front, endpoint = _held_front(behind, tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(endpoint.request, "POST", "/o", b"{}")
            assert front.wait_held(1, 5) == 1
            assert not answer.done()
            assert not behind.requests
            front.release()
            assert answer.result(5).json() == {"path": "/o"}
    finally:
        front.close()
    assert (front.accepted, front.connections) == (1, 1)


def test_a_dropped_handshake_fails_its_client_and_the_next_connection_is_served(behind, tmp_path):
    front, endpoint = _held_front(behind, tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(endpoint.request, "POST", "/o", b"{}")
            assert front.wait_held(1, 5) == 1
            front.release(drop=True)
            with pytest.raises(BackendError):
                answer.result(5)
        assert endpoint.request("POST", "/o", b"{}").json() == {"path": "/o"}
    finally:
        front.close()
    assert (front.accepted, front.connections) == (2, 1)
    assert len(behind.requests) == 1
