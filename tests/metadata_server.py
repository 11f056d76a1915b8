"""A stand-in for the metadata server's token endpoints (what Cloud Run serves an instance).

As documented (https://cloud.google.com/run/docs/securing/service-identity and
https://cloud.google.com/compute/docs/metadata/querying-metadata): every request must
carry ``Metadata-Flavor: Google`` (else 403); ``…/service-accounts/default/token``
answers ``{"access_token", "expires_in", "token_type"}``; ``…/default/?recursive=true``
the account's email and scopes (google-auth reads it before the token). Point
google-auth at it with ``GCE_METADATA_HOST``, as hookpress's own lookup honours.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["MetadataStandIn"]

_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default/"


class MetadataStandIn:
    """``host`` is ``127.0.0.1:<port>``; ``requests`` records (path with query, headers)."""

    def __init__(self, token: str = "ya29.stand-in", expires_in: int = 3599) -> None:  # noqa: S107
        self.token = token
        self.expires_in = expires_in
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status = 200
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are two writes: no 40 ms stall

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                stand_in.requests.append((self.path, headers))
                path = urlsplit(self.path).path
                if headers.get("metadata-flavor") != "Google":
                    return self._send(403, {"error": "Metadata-Flavor missing"})
                if stand_in.status != 200:
                    return self._send(stand_in.status, {"error": "unavailable"})
                if path == _ACCOUNT + "token":
                    return self._send(
                        200,
                        {
                            "access_token": stand_in.token,
                            "expires_in": stand_in.expires_in,
                            "token_type": "Bearer",
                        },
                    )
                if path == _ACCOUNT:
                    return self._send(
                        200,
                        {
                            "aliases": ["default"],
                            "email": "ingress@p.iam.gserviceaccount.com",
                            "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                        },
                    )
                return self._send(404, {"error": "not found"})

            def _send(self, status: int, doc: dict[str, object]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
