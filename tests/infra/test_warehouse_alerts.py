"""The warehouse side-write and alerts where on-call looks, under mocks — plus the engine
rule the mocks skip: every URN of these components' resources is unique."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pytest
from infra_harness import BASE_CONFIG, SLACK_TOKEN

from infra.config import ConfigError
from infra.warehouse import TABLE_SCHEMA

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE = json.dumps({"enabled": True, "dataset": "hookpress_events", "includePayload": True})


@pytest.fixture
def urns(monkeypatch):
    """Record each resource's URN as the engine forms it: parent type chain + type + name.

    ``set_mocks`` overwrites a repeated URN silently; the engine refuses it.
    """
    chains: dict[int, str] = {}
    seen: list[str] = []
    original = pulumi.Resource.__init__

    def record(self, t, name, custom, props=None, opts=None, *args, **kwargs):
        parent = opts.parent if opts is not None else None
        chain = t if parent is None else f"{chains.get(id(parent), '?')}${t}"
        chains[id(self)] = chain
        if t != "pulumi:pulumi:Stack":
            seen.append(f"{chain}::{name}")
        original(self, t, name, custom, props, opts, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", record)
    return seen


@pytest.fixture
def graph(run, urns):
    return run(
        warehouse=WAREHOUSE,
        alertSlackChannel="#hookpress-oncall",
        alertEmails=json.dumps(["ops@example.com"]),
    )


def test_the_warehouse_is_a_bigquery_subscription_with_a_table_scoped_grant(graph):
    table = graph.one("bigquery/table:Table")
    assert json.loads(table.get("schema")) == TABLE_SCHEMA
    assert table.get("timePartitioning.field") == "publish_time"
    assert table.get("deletionProtection") is True
    sub = graph.one("pubsub/subscription:Subscription", name="events-warehouse")
    config = sub.get("bigqueryConfig")
    assert config["table"] == "acme-prod.hookpress_events.events" or config["table"].endswith(
        ".hookpress_events.events"
    )
    assert config["writeMetadata"] is True
    assert not config.get("useTopicSchema")
    assert sub.get("topic").endswith("/topics/events")
    # Least privilege: the Pub/Sub service agent edits this one table, nothing wider.
    grant = graph.one("bigquery/iamMember:IamMember")
    assert grant.get("role") == "roles/bigquery.dataEditor"
    assert grant.get("member").endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")
    assert grant.get("tableId") == "events"
    project_roles = [r.get("role") for r in graph.of("projects/iAMMember:IAMMember")]
    assert not any(str(role).startswith("roles/bigquery") for role in project_roles)
    datasets = graph.of("bigquery/datasetIamMember:DatasetIamMember")
    assert datasets == []


def test_the_payload_reaches_the_message_only_when_asked(graph, run):
    env = graph.function("ingress").get("serviceConfig.environmentVariables")
    assert env["HOOKPRESS_MESSAGE_PAYLOAD"] == "true"
    plain = run(warehouse=json.dumps({"enabled": True}))
    env = plain.function("ingress").get("serviceConfig.environmentVariables")
    assert "HOOKPRESS_MESSAGE_PAYLOAD" not in env
    assert plain.of("bigquery/table:Table")
    off = run()
    assert not off.of("bigquery/table:Table")
    assert not off.of("pubsub/subscription:Subscription") or all(
        not r.get("bigqueryConfig") for r in off.of("pubsub/subscription:Subscription")
    )


def test_every_alert_notifies_slack_and_email_with_a_token_from_secret_manager(graph):
    slack = graph.one("monitoring/notificationChannel:NotificationChannel", type="slack")
    assert slack.get("labels") == {"channel_name": "#hookpress-oncall"}
    assert slack.get("sensitiveLabels.authToken") == SLACK_TOKEN
    assert SLACK_TOKEN not in json.dumps(BASE_CONFIG), "the token is never in config"
    email = graph.one("monitoring/notificationChannel:NotificationChannel", type="email")
    policies = graph.of("monitoring/alertPolicy:AlertPolicy")
    assert len(policies) >= 4
    for policy in policies:
        channels = policy.get("notificationChannels")
        assert slack.id in channels, policy.get("displayName")
        assert email.id in channels, policy.get("displayName")


def test_the_slack_token_is_read_at_deploy_time_from_its_secret(run):
    graph = run(alertSlackChannel="#ops", alertSlackTokenSecret="team-slack-token")
    slack = graph.one("monitoring/notificationChannel:NotificationChannel", type="slack")
    assert slack.get("sensitiveLabels.authToken") == SLACK_TOKEN


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"alertSlackChannel": "hookpress oncall"}, "hookpress:alertSlackChannel"),
        ({"alertSlackChannel": "#ops", "alertSlackTokenSecret": "bad id!"},
         "hookpress:alertSlackTokenSecret"),
        ({"warehouse": json.dumps({"enabled": "yes"})}, "hookpress:warehouse.enabled"),
        ({"warehouse": json.dumps({"dataset": "no-dashes"})}, "hookpress:warehouse.dataset"),
        ({"warehouse": json.dumps({"table": "events", "extra": 1})}, "hookpress:warehouse"),
    ],
)  # fmt: skip
def test_bad_alert_and_warehouse_config_is_refused(run, overrides, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        run(**overrides)


def test_the_new_components_register_unique_urns(graph, urns):
    mine = [u for u in urns if "hookpress:infra:Warehouse" in u or "SlackChannel" in u]
    assert len(mine) >= 6
    assert len(mine) == len(set(mine)), sorted(u for u in mine if mine.count(u) > 1)


def test_the_runbook_names_the_channels_of_every_alert(graph):
    runbook = (REPO / "docs" / "runbook.md").read_text()
    section = runbook.split("## Alerts at a glance", 1)[1].split("\n## ", 1)[0]
    for policy in graph.of("monitoring/alertPolicy:AlertPolicy"):
        title = policy.get("displayName").split(": ", 1)[1]
        rows = [line for line in section.splitlines() if title in line]
        assert rows, f"the runbook's table has no row for {title!r}"
        assert "alertSlackChannel" in rows[0], rows[0]
        assert "alertEmails" in rows[0], rows[0]
