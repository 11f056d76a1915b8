"""Providers and fair lanes in the Pulumi program: sources by provider, one filtered push
subscription and one deliver service per lane, the shares adding up to wpConcurrencyCap."""

from __future__ import annotations

import json

import pytest

from hookpress.lanes import lane_filter, lane_shares
from hookpress.local.lanerouter import matches
from hookpress.settings import IngressSettings
from infra.config import ConfigError

SOURCES = {
    "openai": {"provider": "openai"},
    "twilio": {"provider": "twilio", "lane": "high"},
    "bulk-import": {"provider": "stripe", "lane": "bulk"},
    "github": {"scheme": "github"},
}


def _program(run, **overrides):
    return run(sources=json.dumps(SOURCES), manageSecretValues="false", **overrides)


@pytest.fixture
def graph(run):
    return _program(run)


def _subscriptions(graph):
    return {r.get("name"): r for r in graph.of("pubsub/subscription:Subscription")}


def test_each_lane_is_a_filtered_subscription_to_its_own_deliver_service(graph):
    subs = _subscriptions(graph)
    lanes = ("high", "normal", "bulk")
    assert subs["events-deliver"].get("filter") == lane_filter("normal", lanes)
    assert subs["events-deliver-high"].get("filter") == lane_filter("high", lanes)
    assert subs["events-deliver-bulk"].get("filter") == lane_filter("bulk", lanes)
    for lane in ("high", "bulk"):
        sub = subs[f"events-deliver-{lane}"]
        endpoint = sub.get("pushConfig.pushEndpoint")
        env = graph.function(f"deliver-{lane}").get("serviceConfig.environmentVariables")
        # endpoint == OIDC audience == the audience the lane's function checks
        assert sub.get("pushConfig.oidcToken.audience") == endpoint
        assert env["HOOKPRESS_PUSH_AUDIENCE"] == endpoint
        assert f"hookpress-deliver-{lane}-" in endpoint
        assert sub.get("deadLetterPolicy.maxDeliveryAttempts") >= 5


def test_every_message_lands_in_exactly_one_lane():
    lanes = ("high", "normal", "bulk")
    for attributes in ({"lane": "high"}, {"lane": "bulk"}, {"lane": "normal"}, {}, {"lane": "x"}):
        hits = [lane for lane in lanes if matches(lane_filter(lane, lanes), attributes)]
        assert len(hits) == 1, (attributes, hits)
    assert lane_filter("normal", ("normal",)) is None


def test_the_lane_shares_add_up_to_the_wordpress_cap(graph):
    total = 0
    deliver_account = graph.function("deliver").get("serviceConfig.serviceAccountEmail")
    for short in ("deliver", "deliver-high", "deliver-bulk"):
        fn = graph.function(short)
        instances = int(fn.get("serviceConfig.maxInstanceCount"))
        per_instance = int(fn.get("serviceConfig.maxInstanceRequestConcurrency", 1))
        total += instances * per_instance
        env = fn.get("serviceConfig.environmentVariables")
        assert f"hookpress-{short}-" in env["HOOKPRESS_PUSH_AUDIENCE"]
        assert fn.get("serviceConfig.serviceAccountEmail") == deliver_account
    assert total == 8
    assert dict(lane_shares(8, 1, ("high", "normal", "bulk"))) == {
        "high": 2, "normal": 4, "bulk": 2,
    }  # fmt: skip


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


def test_a_cap_too_small_for_the_lanes_is_refused(run):
    sources = {"a": {"provider": "stripe", "lane": "high"}, "b": {"provider": "stripe"}}
    with pytest.raises(ConfigError, match="wpConcurrencyCap"):
        run(sources=json.dumps(sources), wpConcurrencyCap="1", manageSecretValues="false")


def test_deliveries_are_stuck_watches_every_lane(graph):
    policy = graph.one(
        "monitoring/alertPolicy:AlertPolicy", displayName="hookpress: deliveries are stuck"
    )
    condition = policy.get("conditions.0.conditionThreshold.filter")
    assert 'one_of("events-deliver", "events-deliver-high", "events-deliver-bulk")' in condition


@pytest.mark.parametrize(("cap", "concurrency"), [(None, None), ("16", "2")])
def test_the_local_stack_runs_each_lanes_deliver_as_it_deploys(run, tmp_path, cap, concurrency):
    """Each lane's deliver locally is its deployed instances: one gunicorn worker per instance
    (a process of its own, as an instance is), each with the instance's THREADS."""
    from hookpress.local.stack import LocalStack, StackOptions

    keys = {"wpConcurrencyCap": cap, "deliverConcurrency": concurrency}
    graph = _program(run, **{k: v for k, v in keys.items() if v is not None})
    sized = {} if cap is None else {"wp_cap": int(cap), "deliver_concurrency": int(concurrency)}
    options = StackOptions(sources=_local(SOURCES), **sized)
    stack = LocalStack(tmp_path, options)
    local = stack.deliver_instances()
    assert set(local) == {"high", "normal", "bulk"}
    for lane, workers in local.items():
        fn = graph.function("deliver" if lane == "normal" else f"deliver-{lane}")
        env = fn.get("serviceConfig.environmentVariables")
        assert int(fn.get("serviceConfig.maxInstanceCount")) == workers
        assert env["WORKERS"] == "1"  # an instance is one worker…
        assert stack._instances_env(local, lane) == {  # …and locally one worker per instance
            "WORKERS": str(workers),
            "THREADS": env["THREADS"],
        }
        assert int(fn.get("serviceConfig.maxInstanceRequestConcurrency", 1)) == int(env["THREADS"])


def _local(sources):
    """The program's source map as the local stack takes it (a provider for a scheme)."""
    return {
        name: {
            "provider": spec.get("provider") or spec["scheme"],
            "lane": spec.get("lane", "normal"),
        }
        for name, spec in sources.items()
    }
