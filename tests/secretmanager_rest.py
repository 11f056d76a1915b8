"""A stand-in for Secret Manager's REST API (v1): the four methods hookpress calls.

It answers as https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions
documents, and ``tests/unit/test_secret_manager_rest.py`` holds it to the client
library's own REST transport (``google-cloud-secret-manager``, ``transport="rest"``),
which parses every answer with the API's protobuf schema: a path, a field name or a
shape the real API would not use fails there. Names come back with the project's
*number*, as the real API returns them. Served by :class:`tests.local_http.ScriptedServer`:
``server.script`` takes statuses to answer (as errors) before serving again.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.local_http import Reply, ScriptedServer, Seen, json_reply

__all__ = ["PROJECT_NUMBER", "SecretManagerStandIn", "crc32c"]

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


def _error(status: int) -> Reply:
    name = _STATUS.get(status, "UNKNOWN")
    return json_reply(status, {"error": {"code": status, "message": name.lower(), "status": name}})


class SecretManagerStandIn:
    """Secrets in memory behind a local HTTP server; ``url`` is its base URL."""

    def __init__(self, project: str = "p", page_size_cap: int = 2) -> None:
        self.project = project
        self.versions: dict[str, list[list[Any]]] = {}  # secret id -> [id, state, bytes]
        self.corrupt_checksum = False
        self.page_size_cap = page_size_cap  # pages this small make paging happen in tests
        self._lock = threading.Lock()
        self.server = ScriptedServer(self._answer)

    @property
    def url(self) -> str:
        return self.server.url()

    @property
    def requests(self) -> list[Seen]:
        return self.server.requests

    def stop(self) -> None:
        self.server.close()

    def add(self, secret: str, value: str, state: str = "ENABLED") -> int:
        with self._lock:
            versions = self.versions.setdefault(secret, [])
            versions.append([len(versions) + 1, state, value.encode()])
            return len(versions)

    # -- the API ----------------------------------------------------------------------------

    def _answer(self, seen: Seen, status: int) -> Reply:
        if status != 200:
            return _error(status)
        with self._lock:
            return self._route(seen)

    def _secret(self, parts: list[str]) -> str | None:
        # projects/{project id or number}/secrets/{secret}
        if len(parts) < 4 or parts[0] != "projects" or parts[2] != "secrets":
            return None
        return parts[3] if parts[1] in {self.project, PROJECT_NUMBER} else None

    def _resource(self, secret: str, version: list[Any]) -> dict[str, Any]:
        return {
            "name": f"projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{version[0]}",
            "createTime": "2026-12-01T00:00:00Z",
            "state": version[1],
            "etag": f'"{version[0]}-{version[1]}"',
        }

    def _route(self, seen: Seen) -> Reply:
        url = urlsplit(seen.path)
        path, _, verb = url.path.partition(":")
        parts = path.removeprefix("/v1/").split("/")
        secret = self._secret(parts)
        versions = self.versions.get(secret or "") if path.startswith("/v1/") else None
        if secret is None or versions is None:
            return _error(404)
        if seen.method == "GET" and len(parts) == 5 and parts[4] == "versions" and not verb:
            return self._list(secret, versions, parse_qs(url.query))
        if seen.method == "POST" and len(parts) == 4 and verb == "addVersion":
            payload = json.loads(seen.content or b"{}")["payload"]
            data = base64.b64decode(payload["data"])
            if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != crc32c(data):
                return _error(400)
            versions.append([len(versions) + 1, "ENABLED", data])
            return json_reply(200, self._resource(secret, versions[-1]))
        found = [v for v in versions if len(parts) == 6 and str(v[0]) == parts[5]]
        if not found or parts[4] != "versions":
            return _error(404)
        version = found[0]
        if seen.method == "GET" and verb == "access":
            if version[1] != "ENABLED":
                return _error(400)  # FAILED_PRECONDITION in the real API
            checksum = crc32c(version[2]) + (1 if self.corrupt_checksum else 0)
            payload = {"data": base64.b64encode(version[2]).decode(), "dataCrc32c": str(checksum)}
            return json_reply(
                200, {"name": self._resource(secret, version)["name"], "payload": payload}
            )
        if seen.method == "POST" and verb == "disable":
            version[1] = "DISABLED"
            return json_reply(200, self._resource(secret, version))
        return _error(404)

    def _list(self, secret: str, versions: list[list[Any]], query: dict[str, list[str]]) -> Reply:
        wanted = query.get("filter", [""])[0]
        shown = [v for v in reversed(versions) if wanted != "state:ENABLED" or v[1] == "ENABLED"]
        size = min(int(query.get("pageSize", ["25"])[0]), self.page_size_cap)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        doc: dict[str, Any] = {
            "versions": [self._resource(secret, v) for v in shown[start : start + size]],
            "totalSize": len(shown),
        }
        if start + size < len(shown):
            doc["nextPageToken"] = str(start + size)
        return json_reply(200, doc)
