"""The test-only trust in a local signing key (``HOOKPRESS_PUSH_TEST_CERTS``) and its guards.

It exists for ``nox -s rehearse``; each guard that keeps it out of the cloud
gets a test that tries to get past it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hookpress.local.oidc import LocalSigner
from hookpress.logs import Logger
from hookpress.pushauth import (
    CLOUD_RUN_VARIABLES,
    TEST_CERTS_VARIABLE,
    PushAuthError,
    push_verifier,
    trusted_test_certs,
)
from hookpress.settings import SettingsError

AUDIENCE = "https://hookpress-deliver-123456789012.europe-west1.run.app"
PUSH_SA = "hookpress-push@proj.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner()


@pytest.fixture
def certs(signer: LocalSigner, tmp_path: Path) -> Path:
    return signer.write_certs(tmp_path / "certs.json")


def _verifier(env: dict[str, str]):
    return push_verifier("oidc", AUDIENCE, PUSH_SA, Logger("deliver"), env=env)


def test_a_token_of_the_local_key_is_accepted_with_the_setting(signer, certs) -> None:
    verifier = _verifier({TEST_CERTS_VARIABLE: str(certs)})
    claims = verifier.verify(f"Bearer {signer.token(AUDIENCE, PUSH_SA)}")
    assert claims["email"] == PUSH_SA


def test_everything_else_is_still_checked(signer, certs) -> None:
    verifier = _verifier({TEST_CERTS_VARIABLE: str(certs)})
    with pytest.raises(PushAuthError) as wrong_audience:
        verifier.verify(f"Bearer {signer.token('https://other.run.app', PUSH_SA)}")
    assert wrong_audience.value.status == 401
    with pytest.raises(PushAuthError) as wrong_account:
        verifier.verify(f"Bearer {signer.token(AUDIENCE, 'someone@proj.iam.gserviceaccount.com')}")
    assert wrong_account.value.status == 403
    other = LocalSigner()  # a key nobody wrote into the file
    with pytest.raises(PushAuthError):
        verifier.verify(f"Bearer {other.token(AUDIENCE, PUSH_SA)}")


def test_without_the_setting_the_local_key_is_not_trusted(signer) -> None:
    """Google's certificates are the default: the local key's kid is unknown there."""
    from hookpress.pushauth import CertsCache

    verifier = push_verifier(
        "oidc", AUDIENCE, PUSH_SA, Logger("deliver"), certs=CertsCache(lambda: ({}, 3600.0))
    )
    with pytest.raises(PushAuthError):
        verifier.verify(f"Bearer {signer.token(AUDIENCE, PUSH_SA)}")
    assert trusted_test_certs({}, Logger("deliver")) is None


@pytest.mark.parametrize("variable", CLOUD_RUN_VARIABLES)
def test_refused_on_cloud_run(certs, variable: str) -> None:
    with pytest.raises(SettingsError, match="this is Cloud Run"):
        _verifier({TEST_CERTS_VARIABLE: str(certs), variable: "hookpress-deliver"})


def test_refused_when_others_can_read_the_file(certs) -> None:
    certs.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        _verifier({TEST_CERTS_VARIABLE: str(certs)})


def test_refused_through_a_symlink(certs, tmp_path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(certs)
    with pytest.raises(SettingsError, match="regular file"):
        _verifier({TEST_CERTS_VARIABLE: str(link)})


def test_refused_for_a_certificate_not_made_for_tests(tmp_path) -> None:
    """A certificate with any other subject (Google's own, say) is never trusted this way."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.google.com")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "google.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"kid": cert.public_bytes(serialization.Encoding.PEM).decode()}, out)
    with pytest.raises(SettingsError, match="CN=hookpress local test signer"):
        _verifier({TEST_CERTS_VARIABLE: str(path)})


def test_refused_when_missing_or_not_json(tmp_path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        _verifier({TEST_CERTS_VARIABLE: str(tmp_path / "nope.json")})
    path = tmp_path / "bad.json"
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="not JSON"):
        _verifier({TEST_CERTS_VARIABLE: str(path)})


def test_the_deliver_entry_point_answers_503_on_cloud_run(certs, monkeypatch) -> None:
    """A deployment carrying the variable never serves: its first request is 503."""
    import functions_framework

    from hookpress import deliver

    env = {
        "HOOKPRESS_PROJECT": "p", "HOOKPRESS_RAW_BUCKET": "b",
        "HOOKPRESS_WP_BASE_URL": "https://wp.example.com/wp-json", "HOOKPRESS_WP_USER": "u",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": "s", "HOOKPRESS_PUSH_AUDIENCE": AUDIENCE,
        "HOOKPRESS_PUSH_SERVICE_ACCOUNT": PUSH_SA, TEST_CERTS_VARIABLE: str(certs),
        "K_SERVICE": "hookpress-deliver",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = Path(__file__).resolve().parents[2]
    app = functions_framework.create_app(
        target="deliver", source=str(root / "functions" / "deliver" / "main.py")
    )
    deliver.install(None)
    try:
        assert app.test_client().post("/", data=b"{}").status_code == 503
    finally:
        deliver.install(None)
