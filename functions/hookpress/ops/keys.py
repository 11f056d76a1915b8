"""Public keys a provider publishes (fal.ai's JWKS), stored as secret versions.

The ingress never fetches keys at request time: a deploy that depended on a
provider's key endpoint being up would turn its outage into ours, and a
request-time fetch is a lever an attacker can pull. Instead
``hookpress keys refresh SOURCE`` fetches the set, checks it holds at least one
usable key, and adds it as the newest version of the source's secret when it
differs from the newest one. Older versions stay enabled (the ingress accepts
every enabled version), so a key fal rotates out keeps verifying until the
operator retires it (``hookpress secrets rotate SOURCE --retire``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hookpress.backends import BackendError
from hookpress.signatures import Fal

if TYPE_CHECKING:
    import httpx

    from hookpress.backends.secrets import SecretValues, SecretWriter

__all__ = ["KeyRefresh", "KeySetError", "fetch_key_set", "refresh"]

MAX_BYTES = 64 * 1024


class KeySetError(Exception):
    """What was fetched is not a key set with a usable Ed25519 key."""


@dataclass(frozen=True, slots=True)
class KeyRefresh:
    """The outcome: whether a version was added, and how many keys the set holds."""

    secret: str
    added: str | None
    keys: int


def fetch_key_set(client: httpx.Client, url: str) -> str:
    """The key set at ``url`` as a canonical JSON document of its usable Ed25519 keys."""
    import httpx

    if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise KeySetError(f"{url} is not an https URL")
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise BackendError("keys", type(exc).__name__) from None
    if response.status_code != 200:
        raise BackendError("keys", f"HTTP {response.status_code}")
    if len(response.content) > MAX_BYTES:
        raise KeySetError(f"the key set at {url} is larger than {MAX_BYTES} bytes")
    keys = Fal.parse_key_set(response.text)
    if not keys:
        raise KeySetError(f"{url} holds no Ed25519 key (kty OKP, crv Ed25519)")
    public = [
        {k: v for k, v in key.items() if k in {"kty", "crv", "x", "kid", "alg", "use"}}
        for key in keys
    ]
    return json.dumps({"keys": public}, sort_keys=True, separators=(",", ":"))


def refresh(
    client: httpx.Client, url: str, writer: SecretWriter, values: SecretValues, secret: str
) -> KeyRefresh:
    """Fetch the set at ``url``; store it as a new version of ``secret`` if it changed."""
    document = fetch_key_set(client, url)
    keys = len(json.loads(document)["keys"])
    current = values.fetch(secret)
    if current and current[0] == document:
        return KeyRefresh(secret, None, keys)
    return KeyRefresh(secret, writer.add_version(secret, document), keys)
