"""The warehouse side-write under mocks — plus the engine rule the mocks skip: every URN
of its resources is unique."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from infra.config import ConfigError
from infra.warehouse import TABLE_SCHEMA

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
    return run(warehouse=WAREHOUSE)


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


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"warehouse": json.dumps({"enabled": "yes"})}, "hookpress:warehouse.enabled"),
        ({"warehouse": json.dumps({"dataset": "no-dashes"})}, "hookpress:warehouse.dataset"),
        ({"warehouse": json.dumps({"table": "events", "extra": 1})}, "hookpress:warehouse"),
    ],
)  # fmt: skip
def test_bad_warehouse_config_is_refused(run, overrides, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        run(**overrides)


def test_the_warehouse_registers_unique_urns(graph, urns):
    mine = [u for u in urns if "hookpress:infra:Warehouse" in u]
    assert len(mine) >= 6
    assert len(mine) == len(set(mine)), sorted(u for u in mine if mine.count(u) > 1)
