"""Published key sets: fetched by a command into secret versions, never at request time."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from hookpress.backends import BackendError
from hookpress.backends.secrets import FileSecretWriter, FileValues
from hookpress.cli import main
from hookpress.ops.keys import KeySetError, fetch_key_set, refresh
from hookpress.ops.target import load_local
from hookpress.signatures import SCHEMES

PAIR = SCHEMES["fal"].new_secret()
JWKS = json.loads(PAIR.verify)
RSA = {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "other"}


def client(status: int, document: object) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        return httpx.Response(status, json=document)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_a_key_set_is_stored_once_and_again_only_when_it_changes(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text("{}")
    writer, values = FileSecretWriter(path), FileValues(path)
    url = "https://rest.fal.ai/.well-known/jwks.json"
    document = {"keys": [RSA, *JWKS["keys"]]}
    first = refresh(client(200, document), url, writer, values, "fal-keys")
    assert first.added
    assert first.keys == 1
    stored = values.fetch("fal-keys")[0]
    assert "RSA" not in stored  # only public Ed25519 keys are kept
    assert '"d"' not in stored
    again = refresh(client(200, document), url, writer, values, "fal-keys")
    assert again.added is None
    # What was stored verifies what the key signs.
    body = b'{"request_id":"r","status":"OK"}'
    headers = {k.lower(): v for k, v in SCHEMES["fal"].sign(body, PAIR.sign, now=1e9).items()}
    SCHEMES["fal"].verify(body, headers, list(values.fetch("fal-keys")), now=1e9)
    rotated = json.loads(SCHEMES["fal"].new_secret().verify)
    assert refresh(client(200, rotated), url, writer, values, "fal-keys").added
    assert len(values.fetch("fal-keys")) == 2  # the old key stays enabled until retired


@pytest.mark.parametrize(
    ("status", "document", "error"),
    [
        (200, {"keys": [RSA]}, KeySetError),
        (200, {"nokeys": 1}, KeySetError),
        (503, {}, BackendError),
        (302, {}, BackendError),
    ],
)
def test_a_bad_key_set_stores_nothing(tmp_path, status, document, error):
    path = tmp_path / "secrets.json"
    path.write_text("{}")
    with pytest.raises(error):
        refresh(
            client(status, document),
            "https://rest.fal.ai/.well-known/jwks.json",
            FileSecretWriter(path),
            FileValues(path),
            "fal-keys",
        )
    assert FileValues(path).fetch("fal-keys") == ()


def test_plain_http_is_refused():
    with pytest.raises(KeySetError, match="https"):
        fetch_key_set(client(200, JWKS), "http://rest.fal.ai/jwks.json")


def test_the_command_refreshes_a_local_stack(tmp_path, capsys):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(JWKS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        secrets_file = tmp_path / "secrets.json"
        secrets_file.write_text(json.dumps({"hookpress-source-fal": ["{}"]}))
        local = tmp_path / "local.json"
        local.write_text(
            json.dumps(
                {
                    "project": "p",
                    "ingress_url": "http://127.0.0.1:1",
                    "sources": {"fal": {"provider": "fal", "scheme": "fal", "secrets": ["{}"]}},
                    "emulators": {"pubsub": "h:1", "firestore": "h:2", "storage": "http://h:3"},
                    "secrets_file": str(secrets_file),
                }
            )
        )
        url = f"http://127.0.0.1:{server.server_port}/jwks.json"
        target = load_local(local, env={})
        assert main(["keys", "refresh", "fal", "--url", url, "--json"], target=target) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["added"]
        assert out["keys"] == 1
        assert json.loads(local.read_text())["sources"]["fal"]["secrets"][0].startswith('{"keys"')
        assert main(["keys", "refresh", "github", "--url", url], target=target) != 0
    finally:
        server.shutdown()
        server.server_close()
