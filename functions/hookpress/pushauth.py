"""Authenticating Pub/Sub push requests: the OIDC token on every push.

Pub/Sub signs a Google ID token for the subscription's service account and
sends it as ``Authorization: Bearer …``. We check its signature against
Google's published certificates, its audience (the deliver URL), its expiry,
its issuer, and that ``email`` is the configured push identity with
``email_verified``. A missing or invalid token is 401; a valid token for
someone else is 403.

The local Pub/Sub emulator sends no token: turning verification off is an
explicit setting (``HOOKPRESS_PUSH_AUTH=none``), logged loudly at start-up.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from google.auth import exceptions as auth_exc
from google.auth import jwt

from hookpress.logs import Logger

__all__ = ["GOOGLE_CERTS_URL", "CertsCache", "OidcVerifier", "PushAuthError", "push_verifier"]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
_MAX_AGE = re.compile(r"max-age=(\d+)")


class PushAuthError(Exception):
    """The push request is not from our subscription. ``status`` is 401 or 403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CertsCache:
    """Google's signing certificates (kid → PEM), cached as long as Google says."""

    def __init__(
        self,
        fetch: Callable[[], tuple[Mapping[str, str], float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch or self._fetch_google
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._expires = 0.0

    @staticmethod
    def _fetch_google() -> tuple[Mapping[str, str], float]:
        resp = httpx.get(GOOGLE_CERTS_URL, timeout=5.0, follow_redirects=False)
        resp.raise_for_status()
        match = _MAX_AGE.search(resp.headers.get("cache-control", ""))
        certs: dict[str, str] = resp.json()
        return certs, float(match.group(1)) if match else 3600.0

    def get(self, *, force: bool = False) -> Mapping[str, str]:
        """The certificates; re-fetched when expired or when ``force`` (an unknown key id)."""
        with self._lock:
            if force or self._clock() >= self._expires:
                try:
                    certs, max_age = self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    if not self._certs:
                        raise PushAuthError(
                            401, f"certs_unavailable:{type(exc).__name__}"
                        ) from None
                else:
                    self._certs, self._expires = certs, self._clock() + max_age
            return self._certs


class OidcVerifier:
    """Verifies ``Authorization: Bearer <Google ID token>`` on push requests."""

    def __init__(
        self,
        audience: str,
        service_account: str,
        certs: CertsCache,
        clock_skew_s: int = 10,
    ) -> None:
        self.audience = audience
        self.service_account = service_account
        self._certs = certs
        self._skew = clock_skew_s

    def _decode(self, token: str, certs: Mapping[str, str]) -> Mapping[str, Any]:
        claims: Mapping[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=dict(certs), audience=self.audience, clock_skew_in_seconds=self._skew
        )
        return claims

    def verify(self, authorization: str | None) -> Mapping[str, Any]:
        """The token's claims, or PushAuthError."""
        if not authorization:
            raise PushAuthError(401, "missing_token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushAuthError(401, "not_a_bearer_token")
        token = token.strip()
        try:
            header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
        except (ValueError, auth_exc.GoogleAuthError):
            raise PushAuthError(401, "malformed_token") from None
        certs = self._certs.get()
        if header.get("kid") not in certs:
            certs = self._certs.get(force=True)  # Google rotated its keys
        try:
            claims = self._decode(token, certs)
        except (ValueError, auth_exc.GoogleAuthError) as exc:
            # Bad signature, expired, wrong audience, unknown key: not a valid token.
            raise PushAuthError(401, f"invalid_token:{type(exc).__name__}") from None
        if claims.get("iss") not in ISSUERS:
            raise PushAuthError(401, "wrong_issuer")
        if claims.get("email") != self.service_account:
            raise PushAuthError(403, "wrong_service_account")
        if claims.get("email_verified") is not True:
            raise PushAuthError(403, "email_not_verified")
        return claims


def push_verifier(
    auth: str,
    audience: str | None,
    service_account: str | None,
    log: Logger,
    certs: CertsCache | None = None,
) -> OidcVerifier | None:
    """The verifier the settings ask for; None (and a loud warning) when turned off."""
    if auth == "oidc" and audience and service_account:
        return OidcVerifier(audience, service_account, certs or CertsCache())
    log.warning(
        f"PUSH AUTHENTICATION IS OFF (HOOKPRESS_PUSH_AUTH=none): any caller that reaches "
        f"this {log.component} function is trusted. Only the local stack may run like this.",
        outcome="push_auth_disabled",
    )
    return None
