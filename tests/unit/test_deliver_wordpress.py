"""Deliver's WordPress client on our HTTP/1.1 wire, against real local servers.

The rules it kept from the httpx client it replaced: one URL fixed at build
time, redirects never followed, connect and read timeouts, at most 64 KiB of
an answer read and 4,000 characters kept, Basic auth with the password of the
call, the request headers, every failure a retryable DeliveryError with the
reason strings the logs and records already carry; HTTPS verified against
certifi's CA set (or ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as httpx did). And the
wire's rule: a request that may have reached WordPress is never sent again.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from hookpress.deliver import (
    AuthenticationFailed,
    PermanentDeliveryError,
    RetryableDeliveryError,
    WordPressClient,
)
from tests.local_http import (
    DROP,
    LOOPBACK,
    Authority,
    Hang,
    Reply,
    ScriptedServer,
    Seen,
    closed_port,
    json_reply,
)

RECORD = {"source": "stripe", "external_id": "evt_1", "payload": {"note": "ünïcode"}}


def created(seen: Seen, status: int) -> Reply:
    return json_reply(status, {"id": 7})


@pytest.fixture
def wp() -> Iterator[ScriptedServer]:
    server = ScriptedServer(created, default_status=201)
    yield server
    server.close()


def client(url: str, **kwargs: object) -> WordPressClient:
    options: dict[str, object] = {"connect_timeout_s": 2.0, "read_timeout_s": 1.0, "env": {}}
    options.update(kwargs)
    return WordPressClient(url + "/wp-json", "hookpress-ingest", **options)  # type: ignore[arg-type]


def test_a_post_carries_the_record_and_every_header(wp):
    delivered = client(wp.url()).post(RECORD, "key-1", "pw one")
    assert (delivered.status, delivered.post_id) == (201, 7)
    (seen,) = wp.requests
    assert (seen.method, seen.path) == ("POST", "/wp-json/ai-guy/v1/ingest")
    assert seen.host == f"127.0.0.1:{wp.port}"
    assert seen.json() == RECORD
    assert seen.headers["Idempotency-Key"] == "key-1"
    assert seen.headers["User-Agent"] == "hookpress-deliver"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Content-Type"] == "application/json"
    assert (
        seen.headers["Authorization"]
        == "Basic " + base64.b64encode(b"hookpress-ingest:pw one").decode()
    )


def test_each_call_authenticates_with_its_own_password(wp):
    wordpress = client(wp.url())
    wordpress.post(RECORD, "k", "old-pw")
    wordpress.post(RECORD, "k", "nëw-pw")  # UTF-8, as httpx encoded it
    sent = [base64.b64decode(r.headers["Authorization"][6:]) for r in wp.requests]
    assert sent == [b"hookpress-ingest:old-pw", "hookpress-ingest:nëw-pw".encode()]


def test_posts_share_one_kept_alive_connection(wp):
    wordpress = client(wp.url())
    for i in range(5):
        wordpress.post(RECORD, f"k{i}", "pw")
    assert (len(wp.requests), wp.connections) == (5, 1)


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (401, AuthenticationFailed, "wordpress_unauthorized"),
        (403, PermanentDeliveryError, "wordpress_rejected"),
        (302, PermanentDeliveryError, "redirect_not_followed"),
        (429, RetryableDeliveryError, "wordpress_unavailable"),
        (503, RetryableDeliveryError, "wordpress_unavailable"),
    ],
)
def test_statuses_are_classified_and_never_repeated_by_the_wire(wp, status, error, reason):
    wp.script = [status]
    with pytest.raises(error) as raised:
        client(wp.url()).post(RECORD, "k", "pw")
    assert (raised.value.reason, raised.value.status) == (reason, status)
    assert len(wp.requests) == 1  # 429 and 503 too: Pub/Sub's redelivery is the retry


def test_a_redirect_is_not_followed(wp):
    elsewhere = ScriptedServer(created)
    try:
        wp.script = [lambda seen: (307, {"Location": elsewhere.url() + "/steal"}, b"")]
        with pytest.raises(PermanentDeliveryError, match="redirect_not_followed"):
            client(wp.url()).post(RECORD, "k", "pw")
        assert elsewhere.requests == []  # the credentials went nowhere else
    finally:
        elsewhere.close()


def test_at_most_64_kib_is_read_and_4000_characters_kept(wp):
    huge = b'{"code":"error","message":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    wp.script = [lambda seen: (400, {"Content-Type": "application/json"}, huge), 201]
    wordpress = client(wp.url())
    with pytest.raises(PermanentDeliveryError) as raised:
        wordpress.post(RECORD, "k", "pw")
    assert raised.value.body == huge[:4000].decode()
    assert wordpress.post(RECORD, "k2", "pw").status == 201  # on a new connection:
    assert wp.connections == 2  # the unread rest of the answer is never parsed as one


def test_a_slow_answer_times_out_and_is_not_sent_again(wp):
    wp.script = [Hang(3.0)]
    with pytest.raises(RetryableDeliveryError) as raised:
        client(wp.url(), read_timeout_s=0.3).post(RECORD, "k", "pw")
    assert raised.value.reason == "wordpress_timeout"
    assert len(wp.requests) == 1


def test_a_connection_closed_without_an_answer_is_not_sent_again(wp):
    """The request may have been applied: Pub/Sub redelivers, with the same Idempotency-Key."""
    wp.script = [DROP]
    with pytest.raises(RetryableDeliveryError) as raised:
        client(wp.url()).post(RECORD, "k", "pw")
    assert raised.value.reason == "wordpress_RemoteProtocolError"
    assert len(wp.requests) == 1


def test_a_connection_closed_while_idle_is_not_used(wp):
    wordpress = client(wp.url())
    wordpress.post(RECORD, "k1", "pw")
    wp.script = [lambda seen: (201, {"Connection": "close"}, b'{"id": 8}')]
    wordpress.post(RECORD, "k2", "pw")  # the server closes after answering
    assert wordpress.post(RECORD, "k3", "pw").post_id == 7
    assert (len(wp.requests), wp.connections) == (3, 2)


def test_nothing_listening_is_a_connect_error():
    with pytest.raises(RetryableDeliveryError) as raised:
        client(f"http://127.0.0.1:{closed_port()}").post(RECORD, "k", "pw")
    assert raised.value.reason == "wordpress_ConnectError"


# -- HTTPS ------------------------------------------------------------------------------------


@pytest.fixture
def authority() -> Authority:
    return Authority("hookpress test CA")


@pytest.fixture
def tls_wp(authority: Authority, tmp_path: Path) -> Iterator[ScriptedServer]:
    server = ScriptedServer(created, authority.server_context(tmp_path, LOOPBACK), 201)
    yield server
    server.close()


def test_https_with_a_certificate_from_a_trusted_ca(tls_wp, authority, tmp_path):
    cafile = authority.pem(tmp_path / "ca.pem")
    for host in ("127.0.0.1", "localhost"):
        wordpress = client(tls_wp.url(host, "https"), env={"SSL_CERT_FILE": cafile})
        assert wordpress.post(RECORD, "k", "pw").status == 201
    assert len(tls_wp.requests) == 2


def test_https_trusts_certifis_cas_by_default_so_a_private_ca_is_refused(tls_wp):
    with pytest.raises(RetryableDeliveryError) as raised:
        client(tls_wp.url("127.0.0.1", "https")).post(RECORD, "k", "pw")
    assert raised.value.reason == "wordpress_ConnectError"
    assert tls_wp.requests == []  # nothing was sent: not the record, not the password


def test_https_refuses_a_certificate_from_another_ca(tls_wp, tmp_path):
    other = Authority("another CA").pem(tmp_path / "other.pem")
    with pytest.raises(RetryableDeliveryError, match="wordpress_ConnectError"):
        client(tls_wp.url("127.0.0.1", "https"), env={"SSL_CERT_FILE": other}).post(
            RECORD, "k", "pw"
        )
    assert tls_wp.requests == []


def test_https_refuses_a_certificate_for_another_name(authority, tmp_path):
    cafile = authority.pem(tmp_path / "ca.pem")
    elsewhere = [x509.DNSName("wordpress.example")]
    server = ScriptedServer(created, authority.server_context(tmp_path, elsewhere), 201)
    try:
        with pytest.raises(RetryableDeliveryError, match="wordpress_ConnectError"):
            client(server.url("127.0.0.1", "https"), env={"SSL_CERT_FILE": cafile}).post(
                RECORD, "k", "pw"
            )
        assert server.requests == []
    finally:
        server.close()


def test_a_ca_directory_is_trusted_through_ssl_cert_dir(tls_wp, authority, tmp_path):
    import subprocess

    folder = tmp_path / "cas"
    folder.mkdir()
    authority.pem(folder / "ca.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    wordpress = client(tls_wp.url("127.0.0.1", "https"), env={"SSL_CERT_DIR": str(folder)})
    assert wordpress.post(RECORD, "k", "pw").status == 201


def test_the_default_ca_set_is_certifis_as_it_was_with_httpx():
    import certifi

    from hookpress.deliver._wordpress import trusted_cas

    expected = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert len(expected) > 100
    assert trusted_cas({})().get_ca_certs() == expected


def test_the_first_request_does_not_import_the_idna_codec(tls_wp, authority, tmp_path):
    """An ASCII host goes to getaddrinfo and ssl as bytes: the "idna" codec (stringprep,
    unicodedata: ~9 ms) stays out of the first request, plain or TLS."""
    import subprocess
    import sys

    cafile = authority.pem(tmp_path / "ca.pem")
    code = (
        "import sys\n"
        "from hookpress.deliver import WordPressClient\n"
        f"for url in ({tls_wp.url('localhost', 'https')!r}, {tls_wp.url('localhost')!r}):\n"
        "    c = WordPressClient(url, 'u', connect_timeout_s=2, read_timeout_s=2,"
        f" env={{'SSL_CERT_FILE': {cafile!r}}})\n"
        "    try:\n"
        "        c.post({}, 'k', 'pw')\n"
        "    except Exception:\n"
        "        pass\n"
        "print('encodings.idna' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert len(tls_wp.requests) == 1  # the TLS post arrived (the plain one was refused)


@pytest.mark.parametrize("auth", ["none", "oidc"])
def test_the_instance_starts_warming_its_first_push_when_it_is_built(monkeypatch, auth):
    # the first push then reads its record, body and password while connections open, the
    # password is read, certifi is parsed and (checking tokens) Google's keys are fetched
    from hookpress import deliver
    from hookpress.deliver import Deliverer, OidcVerifier

    warmed: list[str] = []
    monkeypatch.setattr(Deliverer, "warm", lambda self: warmed.append(self.wordpress.url))
    monkeypatch.setattr(OidcVerifier, "warm", lambda self: warmed.append(self.audience))
    env = {
        "HOOKPRESS_PROJECT": "p", "HOOKPRESS_RAW_BUCKET": "b",
        "HOOKPRESS_WP_BASE_URL": "https://wp.example.com/wp-json", "HOOKPRESS_WP_USER": "u",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": "s", "HOOKPRESS_PUSH_AUTH": auth,
        "HOOKPRESS_PUSH_AUDIENCE": "https://deliver.example.run.app",
        "HOOKPRESS_PUSH_SERVICE_ACCOUNT": "push@p.iam.gserviceaccount.com",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deliver.install(None)
    try:
        assert deliver._instance.ready() is not None
    finally:
        deliver.install(None)
    verifier = ["https://deliver.example.run.app"] if auth == "oidc" else []
    assert warmed == [*verifier, "https://wp.example.com/wp-json/ai-guy/v1/ingest"]
