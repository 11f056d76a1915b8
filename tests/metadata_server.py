"""A stand-in for the metadata server's token endpoints (what Cloud Run serves an instance).

As documented (https://cloud.google.com/run/docs/securing/service-identity and
https://cloud.google.com/compute/docs/metadata/querying-metadata): every request must
carry ``Metadata-Flavor: Google`` (else 403); ``…/service-accounts/default/token``
answers ``{"access_token", "expires_in", "token_type"}``; ``…/default/?recursive=true``
the account's email and scopes (google-auth reads it before the token). Point
google-auth at it with ``GCE_METADATA_HOST``, as hookpress's own lookup honours.
Served by :class:`tests.local_http.ScriptedServer` (``status`` answers every request).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.local_http import Reply, ScriptedServer, Seen, json_reply

__all__ = ["MetadataStandIn"]

_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default/"
_FLAVOR = {"Metadata-Flavor": "Google"}


class MetadataStandIn:
    """``host`` is ``127.0.0.1:<port>``; ``requests`` are the requests seen."""

    def __init__(self, token: str = "ya29.stand-in", expires_in: int = 3599) -> None:  # noqa: S107
        self.token = token
        self.expires_in = expires_in
        self.status = 200
        self.server = ScriptedServer(self._answer)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def requests(self) -> list[Seen]:
        return self.server.requests

    def stop(self) -> None:
        self.server.close()

    def _answer(self, seen: Seen, _: int) -> Reply:
        path = urlsplit(seen.path).path
        if seen.headers.get("Metadata-Flavor") != "Google":
            return json_reply(403, {"error": "Metadata-Flavor missing"})
        if self.status != 200:
            return json_reply(self.status, {"error": "unavailable"})
        if path == _ACCOUNT + "token":
            token = {"access_token": self.token, "expires_in": self.expires_in}
            return json_reply(200, token | {"token_type": "Bearer"}, **_FLAVOR)
        if path == _ACCOUNT:
            doc = {
                "aliases": ["default"],
                "email": "ingress@p.iam.gserviceaccount.com",
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return json_reply(200, doc, **_FLAVOR)
        return json_reply(404, {"error": "not found"})
