"""Signature schemes: published vectors, the providers' own libraries as oracles,
and one broken thing per test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from hookpress.signatures import SCHEMES, SignatureError
from hookpress.signatures._common import mac

NOW = 1_700_000_000.0
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def verify(scheme: str, body: bytes, headers: dict[str, str], secrets=(SECRET,), now=NOW, url=None):
    return SCHEMES[scheme].verify(
        body, lower(headers), list(secrets), now=now, tolerance=300, url=url
    )


def reason(scheme: str, body: bytes, headers: dict[str, str], **kw) -> str:
    with pytest.raises(SignatureError) as info:
        verify(scheme, body, headers, **kw)
    return info.value.reason


# -- published known answers --------------------------------------------------


def test_standard_webhooks_published_vector():
    body = b'{"test": 2432232314}'
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    result = verify("standard-webhooks", body, headers, now=1614265330)
    assert result.delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    signed = SCHEMES["standard-webhooks"].sign(
        body, SECRET, now=1614265330, delivery_id="msg_p5jXN8AQM9LWM0D4loKWxJek"
    )
    assert signed["webhook-signature"] == headers["webhook-signature"]


def test_github_published_vector():
    secret = "It's a Secret to Everybody"
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert SCHEMES["github"].sign(body, secret, now=NOW)["X-Hub-Signature-256"] == expected
    result = verify("github", body, {"X-Hub-Signature-256": expected}, secrets=[secret])
    assert result.delivery_id is None


def test_slack_published_vector():
    # The example of Slack's "Verifying requests from Slack" page.
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        "X-Slack-Request-Timestamp": "1531420618",
    }
    verify("slack", body, headers, secrets=[secret], now=1531420618)


def test_shopify_matches_an_independent_computation():
    secret = "hush"
    body = b'{"id":820982911946154508}'
    expected = base64.b64encode(hmac.new(b"hush", body, hashlib.sha256).digest()).decode()
    assert SCHEMES["shopify"].sign(body, secret, now=NOW)["X-Shopify-Hmac-SHA256"] == expected
    verify("shopify", body, {"X-Shopify-Hmac-SHA256": expected}, secrets=[secret])


def test_hmac_timestamp_matches_an_independent_computation():
    body = b'{"id":"evt_1"}'
    mac = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).digest()
    headers = {
        "X-Provider-Signature": base64.b64encode(mac).decode(),
        "X-Provider-Timestamp": "1700000000",
    }
    assert SCHEMES["hmac-timestamp"].sign(body, "s3cret", now=NOW) == headers
    verify("hmac-timestamp", body, headers, secrets=["s3cret"])


# -- the providers' own libraries agree with us on random bodies ----------------

# The standardwebhooks library parses the body after verifying it, so bodies are JSON.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
bodies = json_values.map(lambda v: json.dumps(v, ensure_ascii=False))


@settings(max_examples=200, deadline=None)
@given(body=bodies, msg_id=st.from_regex(r"\Amsg_[A-Za-z0-9]{1,40}\Z"))
def test_standard_webhooks_library_signs_what_we_verify(body: str, msg_id: str):
    ts = int(time.time())
    signature = standardwebhooks.Webhook(SECRET).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}
    assert verify("standard-webhooks", body.encode(), headers, now=ts).delivery_id == msg_id


@settings(max_examples=200, deadline=None)
@given(body=bodies)
def test_we_sign_what_the_standard_webhooks_library_verifies(body: str):
    now = time.time()
    headers = SCHEMES["standard-webhooks"].sign(body.encode(), SECRET, now=now)
    standardwebhooks.Webhook(SECRET).verify(body, headers)


@settings(max_examples=200, deadline=None)
@given(body=bodies)
def test_stripe_library_signs_what_we_verify(body: str):
    ts = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp=ts)
    verify("stripe", body.encode(), {"Stripe-Signature": header}, now=ts)


@settings(max_examples=200, deadline=None)
@given(body=bodies)
def test_we_sign_what_the_stripe_library_verifies(body: str):
    headers = SCHEMES["stripe"].sign(body.encode(), SECRET, now=time.time())
    assert stripe.WebhookSignature.verify_header(
        body, headers["Stripe-Signature"], SECRET, tolerance=300
    )


URL = "https://hooks.example.com/src"
# Every scheme's own kind of key (for Ed25519 schemes the verifying half differs).
PAIRS = {name: impl.new_secret() for name, impl in SCHEMES.items()}
PAIRS["standard-webhooks-v1a"] = SCHEMES["standard-webhooks"].new_key_pair()  # type: ignore[attr-defined]
SIGNING = {**{n: n for n in SCHEMES}, "standard-webhooks-v1a": "standard-webhooks"}


def _form_or_binary(scheme: str, body: bytes) -> bytes:
    # Twilio signs form parameters: a binary body is not a form, so give it one.
    return b"Body=" + base64.urlsafe_b64encode(body) if scheme == "twilio" else body


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=2000), key=st.sampled_from(sorted(PAIRS)))
def test_every_scheme_round_trips_and_rejects_a_flipped_byte(raw: bytes, key: str):
    scheme, pair = SIGNING[key], PAIRS[key]
    body = _form_or_binary(scheme, raw)
    headers = SCHEMES[scheme].sign(body, pair.sign, now=NOW, url=URL)
    verify(scheme, body, headers, secrets=[pair.verify], url=URL)
    if scheme == "twilio":
        tampered = body + b"&x=1"
    else:
        tampered = bytes([body[0] ^ 1]) + body[1:] if body else b" "
    assert reason(scheme, tampered, headers, secrets=[pair.verify], url=URL) == "no_match"


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(max_size=200),
    prefix=st.binary(max_size=80),
    body=st.binary(max_size=70_000),
    digest=st.sampled_from(["sha1", "sha256", "sha512"]),
)
def test_mac_is_the_standard_library_hmac(key: bytes, prefix: bytes, body: bytes, digest: str):
    # mac() keeps each key's padded hash states and copies them (RFC 2104 by hand): it must
    # give hmac.digest's bytes for keys shorter, equal to and longer than the block size
    # (64 bytes for SHA-1 and SHA-256, 128 for SHA-512), empty ones, and any body size.
    assert mac(key, prefix, body, digest) == hmac.digest(key, prefix + body, digest)
    assert mac(key, prefix, body, digest) == hmac.digest(key, prefix + body, digest)  # cached


# -- rotation: any one of several active secrets ---------------------------------


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_any_active_secret_verifies(key: str):
    scheme = SIGNING[key]
    impl = SCHEMES[scheme]
    old = impl.new_secret() if key != "standard-webhooks-v1a" else impl.new_key_pair()  # type: ignore[attr-defined]
    new = PAIRS[key]
    body = _form_or_binary(scheme, b'{"id":"evt_rot"}')
    headers = impl.sign(body, old.sign, now=NOW, url=URL)
    verify(scheme, body, headers, secrets=[new.verify, old.verify], url=URL)
    assert reason(scheme, body, headers, secrets=[new.verify], url=URL) == "no_match"
    assert reason(scheme, body, headers, secrets=[], url=URL) == "no_secret"


def test_standard_webhooks_accepts_any_matching_entry_in_the_list():
    body = b"{}"
    good = SCHEMES["standard-webhooks"].sign(body, SECRET, now=NOW)
    wrong = "v1," + base64.b64encode(b"x" * 32).decode()
    other = "v1a," + base64.b64encode(b"y" * 64).decode()
    headers = {**good, "webhook-signature": f"{wrong} {other} {good['webhook-signature']}"}
    verify("standard-webhooks", body, headers)


def test_stripe_accepts_any_v1_and_ignores_v0():
    body = b"{}"
    sig = SCHEMES["stripe"].sign(body, SECRET, now=NOW)["Stripe-Signature"]
    t, v1 = sig.split(",")
    header = f"{t},v0={'0' * 64},v1={'1' * 64},{v1}"
    verify("stripe", body, {"Stripe-Signature": header})


# -- one broken thing per test ---------------------------------------------------

SW_BODY = b'{"id":"evt_sw"}'


def sw_headers(**override: str) -> dict[str, str]:
    headers = SCHEMES["standard-webhooks"].sign(SW_BODY, SECRET, now=NOW, delivery_id="msg_1")
    headers.update(override)
    return {k: v for k, v in headers.items() if v != "<drop>"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"webhook-signature": "v1"}, "malformed_signature"),
        ({"webhook-signature": "v1,a,b"}, "malformed_signature"),
        ({"webhook-signature": "v1,not*base64!"}, "malformed_signature"),
        ({"webhook-signature": "v1," + base64.b64encode(b"short").decode()}, "malformed_signature"),
        ({"webhook-signature": "v2,abc"}, "malformed_signature"),
        ({"webhook-signature": "<drop>"}, "missing_header"),
        ({"webhook-timestamp": "<drop>"}, "missing_header"),
        ({"webhook-id": "<drop>"}, "missing_header"),
        ({"webhook-id": "msg_1\r\nX-Injected: yes"}, "invalid_id"),
        ({"webhook-id": "m" * 257}, "invalid_id"),
        ({"webhook-timestamp": "abc"}, "malformed_timestamp"),
        ({"webhook-timestamp": "1700000000.5"}, "malformed_timestamp"),
        ({"webhook-timestamp": "-1700000000"}, "malformed_timestamp"),
        ({"webhook-timestamp": "+1700000000"}, "malformed_timestamp"),
        ({"webhook-timestamp": " "}, "missing_header"),
        ({"webhook-timestamp": str(int(NOW) - 301)}, "timestamp_too_old"),
        ({"webhook-timestamp": str(int(NOW) + 301)}, "timestamp_in_future"),
        ({"webhook-id": "msg_2"}, "no_match"),
    ],
)
def test_standard_webhooks_rejects(override: dict[str, str], expected: str):
    assert reason("standard-webhooks", SW_BODY, sw_headers(**override)) == expected


def test_standard_webhooks_window_is_inclusive_at_the_tolerance():
    for ts in (int(NOW) - 300, int(NOW) + 300):
        headers = SCHEMES["standard-webhooks"].sign(SW_BODY, SECRET, now=ts)
        verify("standard-webhooks", SW_BODY, headers)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("v1=" + "a" * 64, "malformed_timestamp"),  # no t
        ("t=1700000000", "malformed_signature"),  # no v1
        ("t=1700000000,t=1700000001,v1=" + "a" * 64, "malformed_signature"),
        ("t=1700000000,v1", "malformed_signature"),
        ("t=1700000000,v1=xyz", "malformed_signature"),
        ("t=abc,v1=" + "a" * 64, "malformed_timestamp"),
        ("t=1.5,v1=" + "a" * 64, "malformed_timestamp"),
        ("t=-5,v1=" + "a" * 64, "malformed_timestamp"),
        (f"t={int(NOW) - 301},v1=" + "a" * 64, "timestamp_too_old"),
        (f"t={int(NOW) + 301},v1=" + "a" * 64, "timestamp_in_future"),
        (f"t={int(NOW)},v1=" + "a" * 64, "no_match"),
    ],
)
def test_stripe_rejects(header: str, expected: str):
    assert reason("stripe", b"{}", {"Stripe-Signature": header}) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "missing_header"),
        ({"X-Hub-Signature-256": "sha1=" + "a" * 64}, "malformed_signature"),
        ({"X-Hub-Signature-256": "a" * 64}, "malformed_signature"),
        ({"X-Hub-Signature-256": "sha256=" + "z" * 64}, "malformed_signature"),
        ({"X-Hub-Signature-256": "sha256=" + "a" * 64}, "no_match"),
        (
            {"X-Hub-Signature-256": "sha256=" + "a" * 64, "X-GitHub-Delivery": "a\nb"},
            "invalid_id",
        ),
    ],
)
def test_github_rejects(headers: dict[str, str], expected: str):
    assert reason("github", b"{}", headers) == expected


def test_github_has_no_timestamp_window():
    body = b'{"zen":"x"}'
    headers = SCHEMES["github"].sign(body, SECRET, now=0, delivery_id="d-1")
    assert verify("github", body, headers, now=NOW + 10**7).delivery_id == "d-1"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Slack-Request-Timestamp": str(int(NOW))}, "missing_header"),
        ({"X-Slack-Signature": "v0=" + "a" * 64}, "missing_header"),
        (
            {"X-Slack-Signature": "v1=" + "a" * 64, "X-Slack-Request-Timestamp": str(int(NOW))},
            "malformed_signature",
        ),
        (
            {"X-Slack-Signature": "v0=" + "a" * 64, "X-Slack-Request-Timestamp": "12.5"},
            "malformed_timestamp",
        ),
        (
            {
                "X-Slack-Signature": "v0=" + "a" * 64,
                "X-Slack-Request-Timestamp": str(int(NOW) - 301),
            },
            "timestamp_too_old",
        ),
    ],
)
def test_slack_rejects(headers: dict[str, str], expected: str):
    assert reason("slack", b"{}", headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "missing_header"),
        ({"X-Shopify-Hmac-SHA256": "%%%"}, "malformed_signature"),
        ({"X-Shopify-Hmac-SHA256": base64.b64encode(b"x" * 32).decode()}, "no_match"),
    ],
)
def test_shopify_rejects(headers: dict[str, str], expected: str):
    assert reason("shopify", b"{}", headers) == expected


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"X-Provider-Timestamp": "<drop>"}, "missing_header"),
        ({"X-Provider-Signature": "<drop>"}, "missing_header"),
        ({"X-Provider-Signature": "@@@"}, "malformed_signature"),
        ({"X-Provider-Timestamp": "1e9"}, "malformed_timestamp"),
        ({"X-Provider-Timestamp": str(int(NOW) - 1000)}, "timestamp_too_old"),
        ({"X-Provider-Timestamp": str(int(NOW) + 1000)}, "timestamp_in_future"),
    ],
)
def test_hmac_timestamp_rejects(override: dict[str, str], expected: str):
    headers = SCHEMES["hmac-timestamp"].sign(b"{}", SECRET, now=NOW)
    headers.update(override)
    headers = {k: v for k, v in headers.items() if v != "<drop>"}
    assert reason("hmac-timestamp", b"{}", headers) == expected


def test_a_misconfigured_standard_webhooks_secret_fails_closed():
    body = b"{}"
    headers = SCHEMES["standard-webhooks"].sign(body, SECRET, now=NOW)
    assert reason("standard-webhooks", body, headers, secrets=["whsec_!!notbase64"]) == "no_secret"
