"""Push authentication: Google ID tokens, verified against keys the test controls."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from hookpress.deliver import CertsCache, OidcVerifier, PushAuthError

AUDIENCE = "https://deliver-abc-ew.a.run.app"
PUSH_SA = "push@proj.iam.gserviceaccount.com"


class Keys:
    """An RSA key with a self-signed certificate, like Google's published ones."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)

    def token(self, kid: str | None = None, **overrides: object) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "email": PUSH_SA,
            "email_verified": True,
            "sub": "1234",
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(self.signer, claims, key_id=kid).decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys("k1")


@pytest.fixture
def fetches() -> list[int]:
    return []


@pytest.fixture
def verifier(keys: Keys, fetches: list[int]) -> OidcVerifier:
    def fetch():
        fetches.append(1)
        return {keys.kid: keys.cert_pem}, 3600.0

    return OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(fetch))


def refused(verifier: OidcVerifier, header: str | None) -> tuple[int, str]:
    with pytest.raises(PushAuthError) as info:
        verifier.verify(header)
    return info.value.status, info.value.reason


def test_a_valid_token_passes_and_certs_are_cached(verifier, keys, fetches):
    claims = verifier.verify(f"Bearer {keys.token()}")
    assert claims["email"] == PUSH_SA
    verifier.verify(f"Bearer {keys.token()}")
    assert len(fetches) == 1


def test_missing_or_not_bearer_is_401(verifier, keys):
    assert refused(verifier, None) == (401, "missing_token")
    assert refused(verifier, "") == (401, "missing_token")
    assert refused(verifier, f"Basic {keys.token()}")[0] == 401
    assert refused(verifier, "Bearer not.a.jwt")[0] == 401


def test_wrong_audience_is_401(verifier, keys):
    assert refused(verifier, f"Bearer {keys.token(aud='https://elsewhere')}")[0] == 401


def test_expired_is_401(verifier, keys):
    old = int(time.time()) - 7200
    assert refused(verifier, f"Bearer {keys.token(iat=old, exp=old + 3600)}")[0] == 401


def test_signed_by_another_key_is_401(verifier):
    stranger = Keys("k1")  # same key id, different key
    assert refused(verifier, f"Bearer {stranger.token()}")[0] == 401


def test_unknown_key_id_refetches_once_then_401(keys):
    google, clock = Google(keys), Clock()
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(google, clock))
    verifier.verify(f"Bearer {keys.token()}")
    clock.t += 30  # Google may have rotated its keys since the last fetch
    other = Keys("k2")
    assert refused(verifier, f"Bearer {other.token()}")[0] == 401
    assert refused(verifier, f"Bearer {other.token()}")[0] == 401
    assert google.calls == 2


def test_tampered_payload_is_401(verifier, keys):
    header, payload, signature = keys.token().split(".")
    forged = keys.token(email="attacker@evil.example").split(".")[1]
    assert refused(verifier, f"Bearer {header}.{forged}.{signature}")[0] == 401
    assert payload != forged


def test_wrong_issuer_is_401(verifier, keys):
    assert refused(verifier, f"Bearer {keys.token(iss='https://evil.example')}") == (
        401,
        "wrong_issuer",
    )


def test_another_service_account_is_403(verifier, keys):
    token = keys.token(email="someone@proj.iam.gserviceaccount.com")
    assert refused(verifier, f"Bearer {token}") == (403, "wrong_service_account")


def test_unverified_email_is_403(verifier, keys):
    assert refused(verifier, f"Bearer {keys.token(email_verified=False)}") == (
        403,
        "email_not_verified",
    )
    assert refused(verifier, f"Bearer {keys.token(email_verified=None)}") == (
        403,
        "email_not_verified",
    )


# -- the certificate cache backs off: no fetch per request, whatever callers send ----------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Google:
    """Google's certificate endpoint: answers with the keys, or fails with ``error``."""

    def __init__(self, keys: Keys, max_age: float = 3600.0) -> None:
        self.keys, self.max_age = keys, max_age
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> tuple[dict[str, str], float]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {self.keys.kid: self.keys.cert_pem}, self.max_age


def test_invented_key_ids_cannot_drive_fetches(keys):
    google, clock = Google(keys), Clock()
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(google, clock))
    verifier.verify(f"Bearer {keys.token()}")
    for i in range(500):  # a token for another key id each time
        assert refused(verifier, f"Bearer {keys.token(kid=f'invented-{i}')}")[0] == 401
        clock.t += 0.1
    # 50 s of it: the first fetch, then one forced re-fetch at 30 s
    assert google.calls == 2
    verifier.verify(f"Bearer {keys.token()}")  # the real key still verifies throughout


def _http_errors() -> list[Exception]:
    from hookpress.pushauth import CertsRefused
    from hookpress.wire import TransportError, WireError

    return [
        TransportError("google-certs", "connect", ConnectionRefusedError()),
        TransportError("google-certs", "read", TimeoutError()),
        TransportError("google-certs", "read", WireError("connection closed by the peer")),
        CertsRefused("HTTP 503"),
        ValueError("not json"),
    ]


@pytest.mark.parametrize("error", _http_errors(), ids=lambda e: type(e).__name__)
def test_an_outage_serves_held_certs_and_backs_off(keys, error):
    google, clock = Google(keys, max_age=60), Clock()
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(google, clock))
    verifier.verify(f"Bearer {keys.token()}")
    google.error = error
    for _ in range(600):  # ten minutes at one push a second, certificates expired
        clock.t += 1
        verifier.verify(f"Bearer {keys.token()}")  # the held certificates still verify
    assert google.calls <= 1 + 6 + 600 // 30  # back-off 1, 2 … 30 s, then one per 30 s


@pytest.mark.parametrize("error", _http_errors(), ids=lambda e: type(e).__name__)
def test_no_certs_at_all_is_503_not_401_and_backs_off(keys, error):
    google, clock = Google(keys), Clock()
    google.error = error
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(google, clock))
    for _ in range(100):
        status, reason = refused(verifier, f"Bearer {keys.token()}")
        assert status == 503  # our failure, not the caller's: Pub/Sub retries
        assert reason == f"certs_unavailable:{type(error).__name__}"
    assert google.calls == 1
    google.error = None
    clock.t += 1
    verifier.verify(f"Bearer {keys.token()}")
    assert google.calls == 2


def test_a_zero_max_age_does_not_fetch_per_request(keys):
    google, clock = Google(keys, max_age=0), Clock()
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(google, clock))
    for _ in range(100):
        verifier.verify(f"Bearer {keys.token()}")
        clock.t += 0.1
    assert google.calls == 1


@pytest.mark.parametrize("body", [[], {"k1": 1}, "x"], ids=["list", "not-pem", "string"])
def test_googles_answer_must_be_a_map_of_certificates(body):
    from hookpress.wire import Answer

    with pytest.raises(ValueError, match="not a map"):
        CertsCache.parse(Answer(200, json.dumps(body).encode(), "application/json"))
    certs, max_age = CertsCache.parse(
        Answer(
            200,
            b'{"k1": "PEM"}',
            "application/json",
            {"cache-control": "public, max-age=19984"},
        )
    )
    assert (dict(certs), max_age) == ({"k1": "PEM"}, 19984.0)


def test_the_certificates_are_fetched_over_http_on_our_wire(monkeypatch):
    """Google's certificates from a real local server standing in for www.googleapis.com:
    the answer's Cache-Control sets how long they are held; an error status is refused."""
    from hookpress import pushauth, wire
    from hookpress.instance import Lazy
    from hookpress.pushauth import CertsRefused
    from tests.local_http import ScriptedServer, json_reply

    google = ScriptedServer(
        lambda seen, status: json_reply(
            status, {"k1": "PEM"}, **{"Cache-Control": "public, max-age=21600"}
        )
    )
    try:
        endpoint = wire.Endpoint("google-certs", google.url() + "/oauth2/v1/certs", 5.0)
        monkeypatch.setattr(pushauth, "_GOOGLE_CERTS", Lazy(lambda: endpoint))
        assert CertsCache._fetch_google() == ({"k1": "PEM"}, 21600.0)
        google.script = [503]
        with pytest.raises(CertsRefused):
            CertsCache._fetch_google()
        assert [(r.method, r.path) for r in google.requests] == [("GET", "/oauth2/v1/certs")] * 2
        assert google.connections == 1  # kept alive between fetches
    finally:
        google.close()


def test_the_push_path_does_not_import_httpx():
    """Verifying pushes needs no httpx: it is not imported with deliver or its verifier."""
    import subprocess
    import sys

    code = (
        "import sys; import hookpress.deliver, hookpress.pushauth; "
        "print([m for m in ('httpx', 'httpcore', 'h11', 'anyio') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
