"""Authenticating Pub/Sub push requests: the OIDC token on every push.

Pub/Sub signs a Google ID token for the subscription's service account and
sends it as ``Authorization: Bearer …``. We check its signature against
Google's published certificates, its audience (the deliver URL), its expiry,
its issuer, and that ``email`` is the configured push identity with
``email_verified``. A missing or invalid token is 401; a valid token for
someone else is 403; no certificates to check it with is 503.

The local Pub/Sub emulator sends no token: turning verification off is an
explicit setting (``HOOKPRESS_PUSH_AUTH=none``), logged loudly at start-up.

Test-only trust in a local signing key
--------------------------------------
``nox -s rehearse`` runs the deployed functions with verification ON, and a
local front signs the tokens Pub/Sub and Cloud Scheduler would sign. The
functions trust that front's key through ``HOOKPRESS_PUSH_TEST_CERTS``: a
JSON file ``{"<kid>": "<PEM certificate>"}`` used *instead of* Google's
published certificates. Everything else is checked as in the cloud (audience,
issuer, expiry, e-mail, ``email_verified``). It cannot be turned on by
accident in the cloud:

- it is refused, and the function answers 503 to every request, wherever
  Cloud Run's reserved variables (``K_SERVICE``, ``K_REVISION``,
  ``K_CONFIGURATION``) are set: Cloud Run sets them in every instance and
  nobody can override them
  (https://cloud.google.com/run/docs/container-contract#env-vars);
- the file must be a regular file owned by the user running the function and
  readable by nobody else (mode 0600), so a file planted in a shared
  directory is refused;
- every certificate must name the subject :data:`TEST_SIGNER_SUBJECT`, which no
  Google certificate does: only keys made for this purpose are trusted;
- the Pulumi program never sets the variable (``tests/infra`` asserts it), and
  it is logged at WARNING on every start-up that uses it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hookpress import wire
from hookpress.instance import Lazy
from hookpress.logs import Logger
from hookpress.settings import SettingsError

__all__ = [
    "CLOUD_RUN_VARIABLES",
    "GOOGLE_CERTS_URL",
    "TEST_CERTS_VARIABLE",
    "TEST_SIGNER_SUBJECT",
    "CertsCache",
    "OidcVerifier",
    "PushAuthError",
    "push_verifier",
    "trusted_test_certs",
]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
_FETCH_TIMEOUT_S = 5.0
#: one kept-alive connection pool to Google's certificates, made on the first fetch
_GOOGLE_CERTS: Lazy[wire.Endpoint] = Lazy(
    lambda: wire.Endpoint("google-certs", GOOGLE_CERTS_URL, _FETCH_TIMEOUT_S)
)
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
_MAX_AGE = re.compile(r"max-age=(\d+)")

#: the test-only setting: a JSON file of local certificates trusted instead of Google's
TEST_CERTS_VARIABLE = "HOOKPRESS_PUSH_TEST_CERTS"
#: the subject common name every trusted test certificate must carry
TEST_SIGNER_SUBJECT = "hookpress local test signer"
#: set by Cloud Run in every instance, reserved (cannot be overridden)
CLOUD_RUN_VARIABLES = ("K_SERVICE", "K_REVISION", "K_CONFIGURATION")


class PushAuthError(Exception):
    """The push cannot be authenticated.

    ``status`` is 401 or 403 (not from our subscription) or 503 (Google's
    certificates cannot be had right now).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CertsRefused(ValueError):
    """Google answered the certificates request with an error status."""


class CertsCache:
    """Google's signing certificates (kid → PEM), cached as long as Google says.

    Fetches are never driven by traffic. A token with an unknown key id
    forces a re-fetch (Google rotated its keys) only if the last fetch
    attempt is ``min_refetch_s`` old, so a caller inventing key ids causes at
    most one fetch per interval. A failed fetch keeps the certificates held
    (Google publishes new keys well before signing with them) and is retried
    after 1 s, 2 s, 4 s, … up to ``min_refetch_s``; with none held the push is
    answered 503 (our failure: Pub/Sub retries), never a fetch per request.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[Mapping[str, str], float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_refetch_s: float = 30.0,
    ) -> None:
        self._fetch = fetch or self._fetch_google
        self._clock = clock
        self._min_refetch = min_refetch_s
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._expires = 0.0
        self._attempted = float("-inf")
        self._failures = 0
        self._retry_at = float("-inf")
        self._error = "never_fetched"

    @classmethod
    def _fetch_google(cls) -> tuple[Mapping[str, str], float]:
        """GET Google's certificates on our own wire (system CA set, no redirect followed)."""
        answer = _GOOGLE_CERTS().request("GET", "", headers={"Accept": "application/json"})
        return cls.parse(answer)

    @staticmethod
    def parse(answer: wire.Answer) -> tuple[Mapping[str, str], float]:
        """Google's answer: the certificates and for how long (raises ValueError)."""
        if not 200 <= answer.status < 300:
            raise CertsRefused(f"HTTP {answer.status}")
        match = _MAX_AGE.search(answer.headers.get("cache-control", ""))
        certs: Any = answer.json()
        if not isinstance(certs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in certs.items()
        ):
            raise ValueError("not a map of key ids to certificates")
        return certs, float(match.group(1)) if match else 3600.0

    def get(self, *, force: bool = False) -> Mapping[str, str]:
        """The certificates; re-fetched when expired or when ``force`` (an unknown key id)."""
        with self._lock:
            now = self._clock()
            due = now >= self._expires or (force and now - self._attempted >= self._min_refetch)
            if due and now >= self._retry_at:
                self._refetch(now)
            if not self._certs:
                raise PushAuthError(503, f"certs_unavailable:{self._error}")
            return self._certs

    def _refetch(self, now: float) -> None:
        self._attempted = now
        try:
            certs, max_age = self._fetch()
        except (wire.TransportError, ValueError) as exc:
            self._failures += 1
            self._retry_at = now + min(self._min_refetch, 2.0 ** (self._failures - 1))
            self._error = type(exc).__name__
            return
        # A max-age of 0 must not turn every push into a fetch.
        self._certs, self._expires = certs, now + max(max_age, self._min_refetch)
        self._failures, self._retry_at = 0, float("-inf")


class OidcVerifier:
    """Verifies ``Authorization: Bearer <Google ID token>`` on push requests."""

    def __init__(
        self,
        audience: str,
        service_account: str,
        certs: CertsCache,
        clock_skew_s: int = 10,
    ) -> None:
        # Imported here, not with the module: google.auth.jwt brings in cryptography, which
        # only an instance that verifies tokens needs (bench/results/bench.md, cold start).
        from google.auth import exceptions as auth_exc
        from google.auth import jwt

        self.audience = audience
        self.service_account = service_account
        self._certs = certs
        self._skew = clock_skew_s
        self._jwt = jwt
        self._errors: tuple[type[Exception], ...] = (ValueError, auth_exc.GoogleAuthError)

    def _decode(self, token: str, certs: Mapping[str, str]) -> Mapping[str, Any]:
        claims: Mapping[str, Any] = self._jwt.decode(  # type: ignore[no-untyped-call]
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
            header = self._jwt.decode_header(token)  # type: ignore[no-untyped-call]
        except self._errors:
            raise PushAuthError(401, "malformed_token") from None
        certs = self._certs.get()
        if header.get("kid") not in certs:
            certs = self._certs.get(force=True)  # Google rotated its keys
        try:
            claims = self._decode(token, certs)
        except self._errors as exc:
            # Bad signature, expired, wrong audience, unknown key: not a valid token.
            raise PushAuthError(401, f"invalid_token:{type(exc).__name__}") from None
        if claims.get("iss") not in ISSUERS:
            raise PushAuthError(401, "wrong_issuer")
        if claims.get("email") != self.service_account:
            raise PushAuthError(403, "wrong_service_account")
        if claims.get("email_verified") is not True:
            raise PushAuthError(403, "email_not_verified")
        return claims


def _subject_common_name(pem: str) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def trusted_test_certs(env: Mapping[str, str], log: Logger) -> CertsCache | None:
    """The test-only local certificates, if ``HOOKPRESS_PUSH_TEST_CERTS`` names them.

    Raises SettingsError (the function answers 503) on Cloud Run, or when the
    file is not a private file of this user holding only test certificates.
    """
    raw = env.get(TEST_CERTS_VARIABLE, "").strip()
    if not raw:
        return None
    on_cloud_run = [name for name in CLOUD_RUN_VARIABLES if env.get(name)]
    if on_cloud_run:
        raise SettingsError(
            f"{TEST_CERTS_VARIABLE} is set, but this is Cloud Run ({on_cloud_run[0]} is set): "
            "trusting local test keys is for `nox -s rehearse` only; remove the variable."
        )
    path = Path(raw)
    try:
        info = path.lstat()
    except OSError:
        raise SettingsError(f"{TEST_CERTS_VARIABLE} names {raw}, which does not exist.") from None
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SettingsError(
            f"{TEST_CERTS_VARIABLE} names {raw}, which must be a regular file owned by this "
            "user and readable by nobody else (chmod 600)."
        )
    try:
        certs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SettingsError(f"{TEST_CERTS_VARIABLE} names {raw}, which is not JSON.") from None
    if (
        not isinstance(certs, dict)
        or not certs
        or not all(
            isinstance(kid, str)
            and isinstance(pem, str)
            and _subject_common_name(pem) == TEST_SIGNER_SUBJECT
            for kid, pem in certs.items()
        )
    ):
        raise SettingsError(
            f"{TEST_CERTS_VARIABLE} names {raw}, which must map key ids to PEM certificates "
            f"whose subject is CN={TEST_SIGNER_SUBJECT}."
        )
    log.warning(
        f"PUSH TOKENS ARE CHECKED AGAINST LOCAL TEST KEYS ({TEST_CERTS_VARIABLE}), not "
        "Google's: a rehearsal, never a deployment.",
        outcome="push_test_keys",
    )
    trusted: dict[str, str] = dict(certs)
    return CertsCache(fetch=lambda: (trusted, 3600.0))


def push_verifier(
    auth: str,
    audience: str | None,
    service_account: str | None,
    log: Logger,
    certs: CertsCache | None = None,
    env: Mapping[str, str] | None = None,
) -> OidcVerifier | None:
    """The verifier the settings ask for; None (and a loud warning) when turned off.

    Without ``certs``, Google's certificates, or the test-only local ones
    :func:`trusted_test_certs` allows (read from ``env``, the process environment by
    default).
    """
    if auth == "oidc" and audience and service_account:
        if certs is None:
            certs = trusted_test_certs(os.environ if env is None else env, log)
        return OidcVerifier(audience, service_account, certs or CertsCache())
    log.warning(
        f"PUSH AUTHENTICATION IS OFF (HOOKPRESS_PUSH_AUTH=none): any caller that reaches "
        f"this {log.component} function is trusted. Only the local stack may run like this.",
        outcome="push_auth_disabled",
    )
    return None
