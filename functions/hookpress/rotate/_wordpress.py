"""The plugin's credentials routes, the only application-password API the ingest user reaches.

The plugin confines the ingest user to its own routes (core's
``/wp/v2/users/me/application-passwords`` answers it 403), so rotation goes
through ``ai-guy/v1/credentials`` (create) and ``credentials/retire-others``
(keep only the password that authenticated), under the same allowlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["AppPasswords", "RotationError"]


class RotationError(Exception):
    """A step of the rotation failed; ``step`` says which. Nothing secret in the message."""

    def __init__(self, step: str, status: int | None = None) -> None:
        super().__init__(step if status is None else f"{step} (HTTP {status})")
        self.step = step
        self.status = status


@dataclass(frozen=True, slots=True)
class Retired:
    """The password that authenticated (it is kept) and how many others were deleted."""

    uuid: str
    revoked: int


@dataclass(frozen=True, slots=True)
class Created:
    """A new application password: the value (shown once by WordPress) and its uuid."""

    password: str
    uuid: str


class AppPasswords:
    """``ai-guy/v1/credentials`` of the ingest user, on the configured site only."""

    def __init__(
        self,
        base_url: str,
        user: str,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/ai-guy/v1/credentials"
        self._user = user
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport)

    def _call(
        self, step: str, method: str, path: str, password: str, json: Any = None
    ) -> dict[str, Any]:
        try:
            resp = self._client.request(
                method, self._url + path, auth=(self._user, password), json=json
            )
        except httpx.HTTPError as exc:
            raise RotationError(f"{step}:{type(exc).__name__}") from None
        if not 200 <= resp.status_code < 300:
            raise RotationError(step, resp.status_code)
        try:
            data = resp.json()
        except ValueError:
            raise RotationError(f"{step}:not_json", resp.status_code) from None
        if not isinstance(data, dict):
            raise RotationError(f"{step}:unexpected_body", resp.status_code)
        return data

    def create(self, password: str, name: str) -> Created:
        """Create a new application password (WordPress returns its value once)."""
        data = self._call("create", "POST", "", password, json={"name": name})
        new, uuid = data.get("password"), data.get("uuid")
        if not isinstance(new, str) or not isinstance(uuid, str):
            raise RotationError("create:unexpected_body")
        return Created(new, uuid)

    def retire_others(self, password: str) -> Retired:
        """Delete every application password of the user but ``password``'s own."""
        data = self._call("retire", "POST", "/retire-others", password, json={})
        uuid, revoked = data.get("uuid"), data.get("revoked")
        if not isinstance(uuid, str) or not isinstance(revoked, int):
            raise RotationError("retire:unexpected_body")
        return Retired(uuid, revoked)
