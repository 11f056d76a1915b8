"""Providers in the Pulumi program: sources by provider reach HOOKPRESS_SOURCES, and a
wrong one is refused with a sentence before anything is created."""

from __future__ import annotations

import json

import pytest

from hookpress.settings import IngressSettings
from infra.config import ConfigError

SOURCES = {
    "openai": {"provider": "openai"},
    "twilio": {"provider": "twilio", "lane": "high"},
    "bulk-import": {"provider": "stripe", "lane": "bulk"},
    "github": {"scheme": "github"},
}


@pytest.fixture
def graph(run):
    return run(sources=json.dumps(SOURCES), manageSecretValues="false")


def test_sources_by_provider_reach_the_ingress(graph):
    env = dict(graph.function("ingress").get("serviceConfig.environmentVariables"))
    env = {k: v if isinstance(v, str) else "x" for k, v in env.items()}
    settings = IngressSettings.from_env({**env, "HOOKPRESS_RAW_BUCKET": "b"})
    assert settings.sources["openai"].scheme == "standard-webhooks"
    assert settings.sources["twilio"].lane == "high"
    # Twilio signs the URL it calls: the source's path under the ingress URL.
    url = settings.sources["twilio"].url
    assert url.endswith("/twilio")
    assert "hookpress-ingress" in url
    assert settings.sources["github"].provider == "github"


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({"x": {"provider": "nope"}}, "provider must be one of"),
        ({"x": {"provider": "openai", "scheme": "stripe"}}, "signs with scheme"),
        ({"x": {"provider": "stripe", "lane": "urgent"}}, "lane must be one of"),
        ({"x": {"provider": "twilio", "url": "https://a.example/x?q=1"}}, "no query"),
    ],
)
def test_bad_sources_are_refused_with_a_sentence(run, sources, message):
    with pytest.raises(ConfigError, match=message):
        run(sources=json.dumps(sources), manageSecretValues="false")
