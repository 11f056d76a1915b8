"""Push authentication: Google ID tokens, verified against keys the test controls.

Google publishes its keys as a JSON Web Key Set (what the verifier reads) and as
X.509 certificates (what google-auth reads, and the test-only local keys are):
every token test runs with both, and google-auth's own ``jwt.decode`` is the
oracle for which tokens are valid.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from hookpress.deliver import CertsCache, OidcVerifier, PushAuthError
from hookpress.local.oidc import b64url, public_jwk

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
        self.jwk = public_jwk(self.key.public_key(), kid)

    def material(self, form: str) -> object:
        """This key as Google's JWKS lists it (``jwk``) or as a certificate (``pem``)."""
        return {"n": self.jwk["n"], "e": self.jwk["e"]} if form == "jwk" else self.cert_pem

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


@pytest.fixture(params=["jwk", "pem"])
def verifier(keys: Keys, fetches: list[int], request: pytest.FixtureRequest) -> OidcVerifier:
    def fetch():
        fetches.append(1)
        return {keys.kid: keys.material(request.param)}, 3600.0

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

    def __call__(self) -> tuple[dict[str, object], float]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {self.keys.kid: self.keys.material("jwk")}, self.max_age


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


_JWK = {"kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig", "n": "AQAB", "e": "AQAB"}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"k1": "-----BEGIN CERTIFICATE-----"},  # the v1 certificates' shape, not a key set
        {"keys": {"k1": _JWK}},
        {"keys": ["k1"]},
        {"keys": []},
        {"keys": [{**_JWK, "kty": "EC"}]},
        {"keys": [{**_JWK, "alg": "HS256"}]},
        {"keys": [{**_JWK, "use": "enc"}]},
        {"keys": [{**_JWK, "n": 1}]},
        {"keys": [{k: v for k, v in _JWK.items() if k != "kid"}]},
    ],
    ids=[
        "list",
        "string",
        "v1-certificates",
        "keys-not-a-list",
        "key-not-an-object",
        "no-keys",
        "not-rsa",
        "not-rs256",
        "not-for-signatures",
        "n-not-a-string",
        "no-kid",
    ],
)
def test_googles_answer_must_be_a_key_set_with_an_rs256_signing_key(body):
    from hookpress.wire import Answer

    with pytest.raises(ValueError, match="JSON Web Key Set"):
        CertsCache.parse(Answer(200, json.dumps(body).encode(), "application/json"))


def test_googles_key_set_is_read_by_key_id_for_as_long_as_it_says():
    from hookpress.wire import Answer

    other = {**_JWK, "kid": "k0", "kty": "EC", "crv": "P-256"}  # left out, not refused
    minimal = {"kid": "k2", "kty": "RSA", "n": "AQAD", "e": "AQAB"}  # alg and use optional
    certs, max_age = CertsCache.parse(
        Answer(
            200,
            json.dumps({"keys": [other, _JWK, minimal]}).encode(),
            "application/json",
            {"cache-control": "public, max-age=19984, must-revalidate, no-transform"},
        )
    )
    assert dict(certs) == {
        "k1": {"n": "AQAB", "e": "AQAB"},
        "k2": {"n": "AQAD", "e": "AQAB"},
    }
    assert max_age == 19984.0


def test_the_keys_are_fetched_over_http_on_our_wire(monkeypatch, keys):
    """Google's key set from a real local server standing in for www.googleapis.com:
    the answer's Cache-Control sets how long it is held; an error status is refused;
    a token signed by a key in it verifies."""
    from hookpress import pushauth, wire
    from hookpress.instance import Lazy
    from hookpress.pushauth import GOOGLE_CERTS_URL, CertsRefused
    from tests.local_http import ScriptedServer, json_reply

    assert GOOGLE_CERTS_URL == "https://www.googleapis.com/oauth2/v3/certs"
    google = ScriptedServer(
        lambda seen, status: json_reply(
            status, {"keys": [keys.jwk]}, **{"Cache-Control": "public, max-age=21600"}
        )
    )
    try:
        endpoint = wire.Endpoint("google-certs", google.url() + "/oauth2/v3/certs", 5.0)
        monkeypatch.setattr(pushauth, "_GOOGLE_CERTS", Lazy(lambda: endpoint))
        held = ({keys.kid: keys.material("jwk")}, 21600.0)
        assert CertsCache._fetch_google() == held
        verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache())
        assert verifier.verify(f"Bearer {keys.token()}")["email"] == PUSH_SA
        google.script = [503]
        with pytest.raises(CertsRefused):
            CertsCache._fetch_google()
        assert [(r.method, r.path) for r in google.requests] == [("GET", "/oauth2/v3/certs")] * 3
        assert google.connections == 1  # kept alive between fetches
    finally:
        google.close()


# -- held to google-auth's jwt.decode --------------------------------------------------------


def _forged(keys: Keys) -> dict[str, str]:
    """Tokens that must be refused or accepted, each for a reason a verifier can get wrong."""
    import hashlib
    import hmac

    def segment(value: object) -> str:
        return b64url(json.dumps(value).encode())

    header, payload, signature = keys.token(kid="k1").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    now = int(time.time())
    public_pem = keys.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = segment({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    hs_signed = f"{hs_header}.{payload}".encode()
    return {
        "valid": keys.token(kid="k1"),
        "alg-none": f"{segment({'alg': 'none', 'kid': 'k1'})}.{payload}.",
        # the classic: HMAC keyed with the public key, for a verifier that trusts alg
        "alg-hs256-public-key": f"{hs_header}.{payload}."
        + b64url(hmac.new(public_pem, hs_signed, hashlib.sha256).digest()),
        "alg-es256": f"{segment({'alg': 'ES256', 'kid': 'k1'})}.{payload}.{signature}",
        "tampered-payload": f"{header}.{segment({**claims, 'aud': 'x'})}.{signature}",
        "tampered-signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "signature-truncated": f"{header}.{payload}.{signature[:40]}",
        "another-key-same-kid": Keys("k1").token(kid="k1"),
        "unknown-kid": keys.token(kid="k9"),
        "expired": keys.token(kid="k1", iat=now - 7200, exp=now - 3600),
        "expired-within-skew": keys.token(kid="k1", iat=now - 3600, exp=now - 5),
        "issued-in-the-future": keys.token(kid="k1", iat=now + 600, exp=now + 4200),
        "issued-within-skew": keys.token(kid="k1", iat=now + 5),
        "no-exp": keys.token(kid="k1", exp=None),
        "no-iat": keys.token(kid="k1", iat=None),
        "wrong-audience": keys.token(kid="k1", aud="https://elsewhere.a.run.app"),
        "audience-list": keys.token(kid="k1", aud=[AUDIENCE]),
        "no-audience": keys.token(kid="k1", aud=None),
        "two-segments": f"{header}.{payload}",
        "four-segments": f"{header}.{payload}.{signature}.{signature}",
        "header-not-json": f"{b64url(b'not json')}.{payload}.{signature}",
        "payload-a-list": f"{header}.{segment([1, 2])}.{signature}",
    }


@pytest.mark.parametrize("form", ["jwk", "pem"])
def test_every_token_is_judged_as_google_auth_judges_it(keys, form):
    verifier = OidcVerifier(
        AUDIENCE, PUSH_SA, CertsCache(lambda: ({"k1": keys.material(form)}, 3600.0))
    )
    for name, token in _forged(keys).items():
        try:
            jwt.decode(
                token, certs={"k1": keys.cert_pem}, audience=AUDIENCE, clock_skew_in_seconds=10
            )
            oracle = "accepted"
        except Exception:  # noqa: BLE001 - any refusal of google-auth's
            oracle = "refused"
        try:
            verifier.verify(f"Bearer {token}")
            ours = "accepted"
        except PushAuthError as exc:
            ours = "refused" if exc.status == 401 else f"answered {exc.status}"
        assert ours == oracle, name
        assert (name, oracle) != ("valid", "refused")


def test_a_token_without_a_key_id_is_refused(keys):
    """Stricter than google-auth, which would try every key: Google's tokens name theirs."""
    from cryptography.hazmat.primitives.asymmetric import padding

    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = keys.token(kid="k1").split(".")[1]
    signature = keys.key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{header}.{payload}.{b64url(signature)}"
    jwt.decode(token, certs={"k1": keys.cert_pem}, audience=AUDIENCE)  # google-auth takes it
    verifier = OidcVerifier(
        AUDIENCE, PUSH_SA, CertsCache(lambda: ({"k1": keys.material("jwk")}, 3600.0))
    )
    assert refused(verifier, f"Bearer {token}") == (401, "invalid_token:no_key_id")


def test_a_key_that_is_not_one_refuses_the_token_not_the_server(keys):
    broken = {"n": "!!", "e": "AQAB"}
    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(lambda: ({"k1": broken}, 3600.0)))
    assert refused(verifier, f"Bearer {keys.token(kid='k1')}") == (401, "invalid_token:signature")


def test_the_first_push_imports_cryptographys_rsa_alone():
    """The first push of an instance verifies its token with cryptography's RSA: not
    google.auth (jwt, crypt, credentials) nor X.509 certificate parsing (measured ~56
    against ~10 ms on that push; bench/results/bench.md, deliver's cold start as deployed)."""
    import subprocess
    import sys

    probe = f"""
import sys, json
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from hookpress.pushauth import CertsCache, OidcVerifier
token, n, e = sys.argv[1:4]
keys = lambda: ({{"k1": {{"n": n, "e": e}}}}, 3600.0)
verifier = OidcVerifier({AUDIENCE!r}, {PUSH_SA!r}, CertsCache(keys))
verifier.verify("Bearer " + token)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("google", "cryptography")))))
"""
    keys = Keys("k1")  # signed here: the probe, a fresh interpreter, only verifies
    out = subprocess.run(
        [sys.executable, "-c", probe, keys.token(kid="k1"), keys.jwk["n"], keys.jwk["e"]],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert "cryptography.hazmat.primitives.asymmetric.rsa" in loaded
    # (the bare ``google`` namespace packages may be loaded by site-packages' .pth files)
    assert [m for m in loaded if m.startswith("google.auth")] == []
    assert [m for m in loaded if m.startswith("cryptography.x509")] == []


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


def test_warm_fetches_the_keys_in_its_own_thread_and_the_first_push_waits_for_them(keys):
    """deliver's first push imports cryptography while Google's keys are fetched: the push
    then waits for that fetch rather than making a second."""
    import threading

    release, fetched_in = threading.Event(), []

    def fetch():
        fetched_in.append(threading.current_thread().name)
        assert release.wait(10)
        return {keys.kid: keys.material("jwk")}, 3600.0

    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(fetch))
    warming = verifier.warm()
    claims: list[object] = []
    push = threading.Thread(target=lambda: claims.append(verifier.verify(f"Bearer {keys.token()}")))
    push.start()
    push.join(0.2)
    assert push.is_alive()  # waiting for the warm fetch
    release.set()
    push.join(10)
    warming.join(10)
    assert len(claims) == 1
    assert fetched_in == ["warm-google-certs"]


def test_a_failed_warm_fetch_is_backed_off_and_answered_503(keys):
    clock, calls = Clock(), []

    def fetch():
        calls.append(1)
        raise ValueError("not a JSON Web Key Set")

    verifier = OidcVerifier(AUDIENCE, PUSH_SA, CertsCache(fetch, clock))
    verifier.warm().join(10)  # nothing escapes the thread
    assert refused(verifier, f"Bearer {keys.token()}") == (503, "certs_unavailable:ValueError")
    assert calls == [1]  # within the back-off: the push did not fetch again
