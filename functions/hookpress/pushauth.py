"""Authenticating Pub/Sub push requests: the OIDC token on every push.

Pub/Sub signs a Google ID token for the subscription's service account and
sends it as ``Authorization: Bearer …``
(https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions). We
check its RS256 signature against Google's published signing keys, its
audience (the deliver URL), its expiry and issue time, its issuer, and that
``email`` is the configured push identity with ``email_verified``. A missing
or invalid token is 401; a valid token for someone else is 403; no keys to
check it with is 503.

The keys are read as a JSON Web Key Set from the ``jwks_uri`` of Google's
OpenID Connect discovery document
(https://accounts.google.com/.well-known/openid-configuration, which names
https://www.googleapis.com/oauth2/v3/certs; the same keys google-auth reads
as X.509 certificates from ``/oauth2/v1/certs``), and the signature is
checked with cryptography's RSA (PKCS#1 v1.5, SHA-256), the check google-auth
makes. Only the JWT's framing and claims are read here (a few comparisons,
held to google-auth's ``jwt.decode`` in tests/unit/test_oidc.py): the
instance imports cryptography's RSA alone, not google.auth.jwt and X.509
(measured in the function's environment: ~10 against ~56 ms, on the first
push of every instance; bench/results/bench.md, deliver's cold start as
deployed).

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

import base64
import binascii
import contextlib
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
from hookpress.instance import Lazy, background
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

#: Google's signing keys as a JSON Web Key Set (the discovery document's ``jwks_uri``)
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
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


#: what a key id maps to: Google's JSON Web Key (``{"n", "e"}``, base64url) or, for the
#: test-only local keys, a PEM certificate
KeyMaterial = str | Mapping[str, str]


class CertsCache:
    """Google's signing keys (kid → key), cached as long as Google says.

    Fetches are never driven by traffic. A token with an unknown key id
    forces a re-fetch (Google rotated its keys) only if the last fetch
    attempt is ``min_refetch_s`` old, so a caller inventing key ids causes at
    most one fetch per interval. A failed fetch keeps the keys held
    (Google publishes new keys well before signing with them) and is retried
    after 1 s, 2 s, 4 s, … up to ``min_refetch_s``; with none held the push is
    answered 503 (our failure: Pub/Sub retries), never a fetch per request.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[Mapping[str, KeyMaterial], float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_refetch_s: float = 30.0,
    ) -> None:
        self._fetch = fetch or self._fetch_google
        self._clock = clock
        self._min_refetch = min_refetch_s
        self._lock = threading.Lock()
        self._certs: Mapping[str, KeyMaterial] = {}
        self._expires = 0.0
        self._attempted = float("-inf")
        self._failures = 0
        self._retry_at = float("-inf")
        self._error = "never_fetched"

    @classmethod
    def _fetch_google(cls) -> tuple[Mapping[str, KeyMaterial], float]:
        """GET Google's keys on our own wire (system CA set, no redirect followed)."""
        answer = _GOOGLE_CERTS().request("GET", "", headers={"Accept": "application/json"})
        return cls.parse(answer)

    @staticmethod
    def parse(answer: wire.Answer) -> tuple[Mapping[str, KeyMaterial], float]:
        """Google's answer: its RSA signing keys by key id, and for how long (raises ValueError).

        A JSON Web Key Set (RFC 7517): ``{"keys": [{"kid", "kty": "RSA", "n", "e", …}]}``;
        a key for another algorithm or use than RS256 signatures is left out.
        """
        if not 200 <= answer.status < 300:
            raise CertsRefused(f"HTTP {answer.status}")
        match = _MAX_AGE.search(answer.headers.get("cache-control", ""))
        jwks: Any = answer.json()
        entries = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("not a JSON Web Key Set")
        keys: dict[str, KeyMaterial] = {
            e["kid"]: {"n": e["n"], "e": e["e"]}
            for e in entries
            if e.get("kty") == "RSA"
            and e.get("alg", "RS256") == "RS256"
            and e.get("use", "sig") == "sig"
            and all(isinstance(e.get(f), str) for f in ("kid", "n", "e"))
        }
        if not keys:
            raise ValueError("not a JSON Web Key Set with an RS256 signing key")
        return keys, float(match.group(1)) if match else 3600.0

    def get(self, *, force: bool = False) -> Mapping[str, KeyMaterial]:
        """The keys; re-fetched when expired or when ``force`` (an unknown key id)."""
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


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def _b64url(part: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2), strictly: any other character is an error."""
    if not _BASE64URL.match(part):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def _json_object(part: str) -> dict[str, Any]:
    value = json.loads(_b64url(part))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _time_claim(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PushAuthError(401, f"invalid_token:no_{name}")
    return float(value)


class _RS256:
    """cryptography's RSA with PKCS#1 v1.5 and SHA-256, imported when first needed: only an
    instance that verifies tokens needs cryptography (bench/results/bench.md, cold start)."""

    def __init__(self) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        self.rsa = rsa
        self.padding = padding.PKCS1v15()
        self.sha256 = hashes.SHA256()
        self.invalid_signature = InvalidSignature


class OidcVerifier:
    """Verifies ``Authorization: Bearer <Google ID token>`` on push requests.

    What google-auth's ``jwt.decode`` checks, the same way (tests/unit/test_oidc.py holds
    the two to the same answers): the signature by the key the header's ``kid`` names
    (RS256 only: any other ``alg``, ``none`` among them, is refused), ``iat`` no later
    and ``exp`` no earlier than now within ``clock_skew_s``, ``aud`` equal to the
    audience. One difference, stricter: a token without ``kid`` is refused (google-auth
    would try every key; Google's tokens always name theirs).
    """

    def __init__(
        self,
        audience: str,
        service_account: str,
        certs: CertsCache,
        clock_skew_s: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience
        self.service_account = service_account
        self._certs = certs
        self._skew = clock_skew_s
        self._clock = clock
        self._crypto: Lazy[_RS256] = Lazy(_RS256)
        self._keys: dict[tuple[str, str], Any] = {}  # (kid, material) → the public key

    def warm(self) -> threading.Thread | None:
        """Fetch the signing keys now, in a daemon thread: the first push imports
        cryptography meanwhile, and :meth:`verify` waits for this fetch instead of making
        its own. A failure is kept, and backed off, as any failed fetch is. Returns the
        started thread (None: none to be had)."""

        def fetch() -> None:
            with contextlib.suppress(PushAuthError):
                self._certs.get()

        return background(fetch, "warm-google-certs")

    def _public_key(self, kid: str, material: KeyMaterial, crypto: _RS256) -> Any:
        """The RSA public key of a JWK (or of a test certificate), built once per key."""
        cache_key = (kid, material if isinstance(material, str) else json.dumps(material))
        key = self._keys.get(cache_key)
        if key is None:
            if isinstance(material, str):  # the test-only local certificates (rehearsal)
                from cryptography import x509

                key = x509.load_pem_x509_certificate(material.encode()).public_key()
                if not isinstance(key, crypto.rsa.RSAPublicKey):
                    raise ValueError("not an RSA key")
            else:
                n = int.from_bytes(_b64url(material["n"]), "big")
                e = int.from_bytes(_b64url(material["e"]), "big")
                key = crypto.rsa.RSAPublicNumbers(e, n).public_key()
            if len(self._keys) >= 64:  # Google rotates a few keys a month: never grows
                self._keys.clear()
            self._keys[cache_key] = key
        return key

    def verify(self, authorization: str | None) -> Mapping[str, Any]:
        """The token's claims, or PushAuthError."""
        if not authorization:
            raise PushAuthError(401, "missing_token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushAuthError(401, "not_a_bearer_token")
        parts = token.strip().split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three segments")
            header, claims = _json_object(parts[0]), _json_object(parts[1])
            signature = _b64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise PushAuthError(401, "malformed_token") from None
        if header.get("alg") != "RS256":
            raise PushAuthError(401, "invalid_token:algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise PushAuthError(401, "invalid_token:no_key_id")
        crypto = self._crypto()  # imported while a warmed fetch of the keys is on the network
        certs = self._certs.get()
        if kid not in certs:
            certs = self._certs.get(force=True)  # Google rotated its keys
        material = certs.get(kid)
        if material is None:
            raise PushAuthError(401, "invalid_token:unknown_key")
        try:
            key = self._public_key(kid, material, crypto)
            key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode("ascii"), crypto.padding, crypto.sha256
            )
        except (crypto.invalid_signature, ValueError, KeyError, TypeError):
            # Bad signature, or a key that is not one: not a valid token.
            raise PushAuthError(401, "invalid_token:signature") from None
        now = self._clock()
        if _time_claim(claims, "iat") > now + self._skew:
            raise PushAuthError(401, "invalid_token:not_yet_valid")
        if _time_claim(claims, "exp") < now - self._skew:
            raise PushAuthError(401, "invalid_token:expired")
        if claims.get("aud") != self.audience:
            raise PushAuthError(401, "invalid_token:audience")
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
