"""Settings: read once, validated, and every failure names its variable."""

from __future__ import annotations

import json

import pytest

from hookpress.settings import DeliverSettings, IngressSettings, SettingsError

SOURCES = json.dumps({"stripe": {"scheme": "stripe", "secret": "sec-stripe"}})
BASE = {
    "HOOKPRESS_PROJECT": "p",
    "HOOKPRESS_SOURCES": SOURCES,
    "HOOKPRESS_RAW_BUCKET": "raw",
}


def test_defaults():
    s = IngressSettings.from_env(BASE)
    assert s.max_body_bytes == 1_048_576
    assert s.timestamp_tolerance_s == 300
    assert s.event_ttl_days == 30
    assert s.secrets.backend == "secretmanager"
    assert s.sources["stripe"].secret == "sec-stripe"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"HOOKPRESS_PROJECT": None}, "HOOKPRESS_PROJECT"),
        ({"HOOKPRESS_SOURCES": None}, "HOOKPRESS_SOURCES"),
        ({"HOOKPRESS_RAW_BUCKET": ""}, "HOOKPRESS_RAW_BUCKET"),
        ({"HOOKPRESS_SOURCES": "{"}, "HOOKPRESS_SOURCES"),
        ({"HOOKPRESS_SOURCES": "{}"}, "HOOKPRESS_SOURCES"),
        ({"HOOKPRESS_SOURCES": '{"Bad Name": {"scheme": "stripe"}}'}, "HOOKPRESS_SOURCES"),
        ({"HOOKPRESS_SOURCES": '{"a": {"scheme": "md5"}}'}, "scheme"),
        ({"HOOKPRESS_SOURCES": '{"a": {"scheme": "stripe", "x": 1}}'}, "unknown keys"),
        ({"HOOKPRESS_MAX_BODY_BYTES": "lots"}, "HOOKPRESS_MAX_BODY_BYTES"),
        ({"HOOKPRESS_MAX_BODY_BYTES": "10"}, "HOOKPRESS_MAX_BODY_BYTES"),
        ({"HOOKPRESS_TIMESTAMP_TOLERANCE_S": "0"}, "HOOKPRESS_TIMESTAMP_TOLERANCE_S"),
        ({"HOOKPRESS_SECRETS_BACKEND": "vault"}, "HOOKPRESS_SECRETS_BACKEND"),
        ({"HOOKPRESS_SECRETS_BACKEND": "file"}, "HOOKPRESS_SECRETS_FILE"),
    ],
)
def test_invalid_values_fail_with_a_sentence_naming_them(change, named):
    env = {**BASE, **change}
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(SettingsError) as info:
        IngressSettings.from_env(env)
    message = str(info.value)
    assert named in message
    assert message.endswith(".")


def test_google_cloud_project_is_accepted_as_the_project():
    env = {**BASE, "GOOGLE_CLOUD_PROJECT": "g"}
    del env["HOOKPRESS_PROJECT"]
    assert IngressSettings.from_env(env).project == "g"


DELIVER = {
    "HOOKPRESS_PROJECT": "p",
    "HOOKPRESS_RAW_BUCKET": "raw",
    "HOOKPRESS_WP_BASE_URL": "https://example.com/wp-json/",
    "HOOKPRESS_WP_USER": "ingest",
    "HOOKPRESS_WP_APP_PASSWORD_SECRET": "wp-app-password",
    "HOOKPRESS_PUSH_AUDIENCE": "https://deliver.example",
    "HOOKPRESS_PUSH_SERVICE_ACCOUNT": "push@p.iam.gserviceaccount.com",
}


def test_deliver_settings_require_oidc_by_default():
    s = DeliverSettings.from_env(DELIVER)
    assert s.push_auth == "oidc"
    assert s.wp_base_url == "https://example.com/wp-json"
    for name in ("HOOKPRESS_PUSH_AUDIENCE", "HOOKPRESS_PUSH_SERVICE_ACCOUNT"):
        env = {k: v for k, v in DELIVER.items() if k != name}
        with pytest.raises(SettingsError, match=name):
            DeliverSettings.from_env(env)


def test_deliver_push_auth_off_is_explicit():
    env = {k: v for k, v in DELIVER.items() if "PUSH" not in k}
    s = DeliverSettings.from_env({**env, "HOOKPRESS_PUSH_AUTH": "none"})
    assert s.push_auth == "none"


@pytest.mark.parametrize("url", ["ftp://x", "https://x/wp-json?x=1", "not a url"])
def test_deliver_rejects_a_bad_wordpress_url(url):
    with pytest.raises(SettingsError, match="HOOKPRESS_WP_BASE_URL"):
        DeliverSettings.from_env({**DELIVER, "HOOKPRESS_WP_BASE_URL": url})


def test_pause_switch():
    assert DeliverSettings.from_env({**DELIVER, "PAUSE_WP_DELIVERY": "1"}).paused
    with pytest.raises(SettingsError, match="PAUSE_WP_DELIVERY"):
        DeliverSettings.from_env({**DELIVER, "PAUSE_WP_DELIVERY": "maybe"})


def test_a_source_names_a_provider_and_keeps_its_own_name():
    from hookpress.settings import parse_source

    source = parse_source("billing", {"provider": "paddle", "lane": "high"}, "sources", "s-1")
    assert (source.name, source.provider, source.scheme) == ("billing", "paddle", "paddle")
    assert source.lane == "high"
    assert source.tolerance_s == 5  # Paddle's own window
    legacy = parse_source("gh", {"scheme": "github"}, "sources", "s-2")
    assert (legacy.name, legacy.provider, legacy.lane) == ("gh", "github", "normal")
