"""deliver through a real server: functions-framework serving ``functions/deliver/main.py`` in
its default mode (gunicorn), on 127.0.0.1, every service it calls behind an HTTPS front.

What only a server shows: what an instance does with no CPU between requests, as Cloud Run
leaves it under request-based billing. An instance's first request starts threads that
open its connections ahead (Firestore twice, Cloud Storage, WordPress, each with its TLS
handshake: ``Deliverer.warm``). If that request is answered before the handshakes are done,
the instance loses its CPU with those threads in the middle of them; the services may
finish their side meanwhile, or drop the connections. The next push must be delivered
either way, and no thread may sit on a dead handshake until its timeout. The ingress's
side of the same rule is in tests/integration/test_ingress_server.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpress.backends._rest import endpoint_url
from hookpress.local.framework import FunctionProcess
from tests.integration.conftest import (
    Backends,
    assert_quiet,
    behind_held_fronts,
    handshakes_end_while_stopped,
)
from tests.integration.test_deliver import FakeWordPress, deliver_env, event, wp  # noqa: F401
from tests.local_http import Authority
from tests.tls_front import TLSFront

HOST = "127.0.0.1"
#: Every timeout a warming thread could wait out: the backends' and WordPress's connect.
TIMEOUT_S = 20.0
#: What each front holds while the first request is answered: Firestore twice (the record's
#: read and the control document's go out together), Cloud Storage and WordPress once.
WARMED = {"firestore": 2, "gcs": 1, "wordpress": 1}


@pytest.fixture
def held_deliver(
    emulators,
    deliver_env: dict[str, str],  # noqa: F811 - the fixture imported above
    wp: FakeWordPress,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[FunctionProcess, dict[str, TLSFront]]]:
    """A new deliver instance whose services are behind holding HTTPS fronts (by name)."""
    authority = Authority("hookpress test CA")
    fronts = {
        service: TLSFront(endpoint_url(service, emulators.env)[0], authority, tmp_path / service)
        for service in ("firestore", "gcs")
    }
    fronts["wordpress"] = TLSFront(f"http://{HOST}:{wp.port}", authority, tmp_path / "wp")
    env = {
        **deliver_env,
        "FIRESTORE_EMULATOR_HOST": fronts["firestore"].url(),
        "STORAGE_EMULATOR_HOST": fronts["gcs"].url(),
        "HOOKPRESS_WP_BASE_URL": fronts["wordpress"].url("/wp-json"),
        "HOOKPRESS_BACKEND_TIMEOUT_S": str(TIMEOUT_S),
        "HOOKPRESS_WP_CONNECT_TIMEOUT_S": str(TIMEOUT_S),
    }
    with behind_held_fronts("deliver", env, fronts, authority, tmp_path) as process:
        yield process, fronts


def _first_request_answered_with_handshakes_held(
    server: FunctionProcess, fronts: dict[str, TLSFront]
) -> None:
    """The instance's first request, a GET: 405, answered while each warming thread waits
    on its front's handshake."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status == 405
    finally:
        conn.close()
    held = {name: front.wait_held(WARMED[name], 10) for name, front in fronts.items()}
    assert held == WARMED


def _push(server: FunctionProcess, key: str, timeout_s: float) -> int:
    """One push of ``key``'s message, as the subscription sends it; the status."""
    data = base64.b64encode(json.dumps({"event_key": key}).encode()).decode()
    envelope = {
        "message": {"data": data, "messageId": "1", "attributes": {"event_key": key}},
        "subscription": "projects/hookpress-local/subscriptions/events-deliver",
    }
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout_s)
    try:
        conn.request(
            "POST", "/", body=json.dumps(envelope), headers={"Content-Type": "application/json"}
        )
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("drop", [False, True], ids=["handshaken-meanwhile", "dropped-meanwhile"])
def test_warming_suspended_after_a_fast_first_answer_delivers_the_next_push(
    held_deliver: tuple[FunctionProcess, dict[str, TLSFront]],
    event,  # noqa: F811
    wp: FakeWordPress,  # noqa: F811
    backends: Backends,
    drop: bool,
):
    """Handshaken meanwhile: the next push goes out on the connections warmed before it (no
    front accepts another). Dropped meanwhile: each warming thread meets the reset when its
    CPU is back and lets go; the push opens its own connections and is delivered well inside
    the timeout a thread left waiting on a dead handshake would take."""
    server, fronts = held_deliver
    key = event()
    _first_request_answered_with_handshakes_held(server, fronts)
    handshakes_end_while_stopped(server, fronts, drop=drop)
    started = time.monotonic()
    assert _push(server, key, TIMEOUT_S / 2) == 204
    assert time.monotonic() - started < TIMEOUT_S / 2
    assert backends.wait_status(key, "delivered")["status"] == "delivered"
    assert [request.headers["Idempotency-Key"] for request in wp.requests] == [key]
    accepted = {name: front.accepted for name, front in fronts.items()}
    if drop:  # the warmed ones dropped, then the push's own
        assert all(accepted[name] > WARMED[name] for name in fronts), accepted
    else:  # the warmed ones, and no other
        assert accepted == WARMED
    assert_quiet(server, key, "delivered")
