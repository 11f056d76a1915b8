"""A stand-in for Secret Manager's REST API (v1): the four methods hookpress calls.

It answers as https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions
documents, and ``tests/unit/test_secret_manager_rest.py`` holds it to the client
library's own REST transport (``google-cloud-secret-manager``, ``transport="rest"``),
which parses every answer with the API's protobuf schema: a path, a field name or a
shape the real API would not use fails there. Names come back with the project's
*number*, as the real API returns them.

``fail`` makes the next answers an error (a status and its canonical name);
``requests`` records every request line (method, path with query).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["PROJECT_NUMBER", "SecretManagerStandIn"]

PROJECT_NUMBER = "123456789012"
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def crc32c(data: bytes) -> int:
    """CRC-32C, written apart from hookpress's (a shared bug would hide)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


class SecretManagerStandIn:
    """Secrets in memory behind a local HTTP server; ``url`` is its base URL."""

    def __init__(self, project: str = "p", page_size_cap: int = 2) -> None:
        self.project = project
        self.versions: dict[str, list[list[Any]]] = {}  # secret id -> [id, state, bytes]
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.fail: list[int] = []  # statuses to answer, one per request, before serving again
        self.corrupt_checksum = False
        self.page_size_cap = page_size_cap  # pages this small make paging happen in tests
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are two writes: no 40 ms stall

            def do_GET(self) -> None:
                stand_in._handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stand_in._handle(self, self.rfile.read(length))

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, secret: str, value: str, state: str = "ENABLED") -> int:
        with self._lock:
            versions = self.versions.setdefault(secret, [])
            versions.append([len(versions) + 1, state, value.encode()])
            return len(versions)

    # -- the API ----------------------------------------------------------------------------

    def _secret(self, parts: list[str]) -> str | None:
        # projects/{project id or number}/secrets/{secret}
        if len(parts) < 4 or parts[0] != "projects" or parts[2] != "secrets":
            return None
        if parts[1] not in {self.project, PROJECT_NUMBER}:
            return None
        return parts[3]

    def _name(self, secret: str, version: int) -> str:
        return f"projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{version}"

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        with self._lock:
            self.requests.append((h.command, h.path))
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
            if self.fail:
                status = self.fail.pop(0)
                return self._error(h, status)
            return self._route(h, body)

    def _route(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        url = urlsplit(h.path)
        path, _, verb = url.path.partition(":")
        parts = path.removeprefix("/v1/").split("/")
        secret = self._secret(parts)
        if not path.startswith("/v1/") or secret is None:
            return self._error(h, 404)
        versions = self.versions.get(secret)
        if versions is None:
            return self._error(h, 404)
        if h.command == "GET" and len(parts) == 5 and parts[4] == "versions" and not verb:
            return self._list(h, secret, versions, parse_qs(url.query))
        if h.command == "POST" and len(parts) == 4 and verb == "addVersion":
            payload = json.loads(body or b"{}")["payload"]
            data = base64.b64decode(payload["data"])
            if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != crc32c(data):
                return self._error(h, 400)
            versions.append([len(versions) + 1, "ENABLED", data])
            return self._version(h, secret, versions[-1])
        if len(parts) == 6 and parts[4] == "versions":
            found = [v for v in versions if str(v[0]) == parts[5]]
            if not found:
                return self._error(h, 404)
            version = found[0]
            if h.command == "GET" and verb == "access":
                if version[1] != "ENABLED":
                    return self._error(h, 400)  # FAILED_PRECONDITION in the real API
                checksum = crc32c(version[2]) + (1 if self.corrupt_checksum else 0)
                return self._json(
                    h,
                    {
                        "name": self._name(secret, version[0]),
                        "payload": {
                            "data": base64.b64encode(version[2]).decode(),
                            "dataCrc32c": str(checksum),
                        },
                    },
                )
            if h.command == "POST" and verb == "disable":
                version[1] = "DISABLED"
                return self._version(h, secret, version)
        return self._error(h, 404)

    def _list(
        self,
        h: BaseHTTPRequestHandler,
        secret: str,
        versions: list[list[Any]],
        query: dict[str, list[str]],
    ) -> None:
        wanted = query.get("filter", [""])[0]
        shown = [v for v in reversed(versions) if wanted != "state:ENABLED" or v[1] == "ENABLED"]
        size = min(int(query.get("pageSize", ["25"])[0]), self.page_size_cap)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        page = shown[start : start + size]
        doc: dict[str, Any] = {
            "versions": [self._resource(secret, v) for v in page],
            "totalSize": len(shown),
        }
        if start + size < len(shown):
            doc["nextPageToken"] = str(start + size)
        self._json(h, doc)

    def _resource(self, secret: str, version: list[Any]) -> dict[str, Any]:
        return {
            "name": self._name(secret, version[0]),
            "createTime": "2026-12-01T00:00:00Z",
            "state": version[1],
            "etag": f'"{version[0]}-{version[1]}"',
        }

    def _version(self, h: BaseHTTPRequestHandler, secret: str, version: list[Any]) -> None:
        self._json(h, self._resource(secret, version))

    def _json(self, h: BaseHTTPRequestHandler, doc: dict[str, Any], status: int = 200) -> None:
        body = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int) -> None:
        name = _STATUS.get(status, "UNKNOWN")
        self._json(h, {"error": {"code": status, "message": name.lower(), "status": name}}, status)
