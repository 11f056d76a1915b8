"""Logs: Cloud Logging JSON, one line per request, and nothing that must not be there."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.conftest import SECRETS, signed

TRACE = "105445aa7843bc8bf206b12000100000"
MARKER = "payload-marker-7f3a9"


def lines(capsys: Any) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_a_full_cycle_logs_fields_but_no_secret_signature_body_or_header(client, capsys, backends):
    capsys.readouterr()
    body = json.dumps({"id": f"evt_{time.monotonic_ns()}", "note": MARKER}).encode()
    headers = signed("standard-webhooks", body, delivery_id=f"msg_{time.monotonic_ns()}")
    headers["X-Cloud-Trace-Context"] = f"{TRACE}/1;o=1"
    headers["User-Agent"] = "provider-agent-ua-5521"
    accepted = client.post("/standard-webhooks", content=body, headers=headers)
    duplicate = client.post("/standard-webhooks", content=body, headers=headers)
    forged = {**headers, "webhook-signature": "v1," + "A" * 43 + "="}
    unauthorized = client.post("/standard-webhooks", content=body, headers=forged)
    bad = b'{"id": "x", "id": "' + MARKER.encode() + b'"}'
    malformed = client.post("/stripe", content=bad, headers=signed("stripe", bad))
    assert [r.status_code for r in (accepted, duplicate, unauthorized, malformed)] == [
        202,
        200,
        401,
        400,
    ]

    out = lines(capsys)
    records = [json.loads(line) for line in out]  # every line is one JSON object
    requests = [r for r in records if r["message"].startswith("ingress ")]
    assert [r["outcome"] for r in requests] == [
        "accepted",
        "duplicate",
        "unauthorized",
        "malformed",
    ]
    for record in requests:
        assert record["severity"] in {"INFO", "WARNING"}
        assert isinstance(record["duration_ms"], float)
        assert {"source", "outcome", "http_status"} <= set(record)
    key = accepted.json()["event_id"]
    assert requests[0]["event_key"] == key
    assert requests[0]["logging.googleapis.com/trace"] == f"projects/hookpress-local/traces/{TRACE}"
    assert requests[2]["reason"] == "no_match"
    assert requests[3]["reason"] == "duplicate_key"

    text = "\n".join(out)
    forbidden = [
        MARKER,  # the payload
        body.decode(),
        headers["webhook-signature"].split(",", 1)[1],  # the signature
        forged["webhook-signature"].split(",", 1)[1],
        headers["webhook-id"],  # raw header values
        headers["webhook-timestamp"],
        "provider-agent-ua-5521",
        *[secret for values in SECRETS.values() for secret in values],
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # the secret's key part on its own
    ]
    for value in forbidden:
        assert value not in text, value


def test_cr_lf_in_an_id_is_refused_in_one_log_line(client, capsys, backends):
    capsys.readouterr()
    body = b'{"id": "evt_crlf"}'
    headers = signed("standard-webhooks", body, delivery_id="msg_ok")
    # httpx's test transport hands a header value to the app as given, newlines and all
    headers["webhook-id"] = 'msg_1\r\n{"severity":"ERROR","forged":true}'
    resp = client.post("/standard-webhooks", content=body, headers=headers)
    assert resp.status_code == 401
    out = lines(capsys)
    assert len(out) == 1
    record = json.loads(out[0])
    assert record["reason"] == "invalid_id"
    assert "forged" not in record
    assert "msg_1" not in out[0]


def test_an_untrusted_trace_header_is_not_echoed(client, capsys, backends):
    capsys.readouterr()
    body = b'{"id": "evt_trace"}'
    headers = {**signed("stripe", body), "X-Cloud-Trace-Context": "not-a-trace-id-xyz/1"}
    client.post("/stripe", content=body, headers=headers)
    out = "\n".join(lines(capsys))
    assert "not-a-trace-id-xyz" not in out
    assert "logging.googleapis.com/trace" not in out
