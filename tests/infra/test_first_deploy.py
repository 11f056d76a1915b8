"""A fresh project's first ``pulumi up`` does not trip on ordering.

Two things a fresh project refuses for minutes after creation, each waited
for by a ``time.Sleep`` of the maintained pulumiverse-time provider, never by
"run it again":

- a new log-based metric: Monitoring answers 404 to an alert policy naming it
  ("If a metric was created recently, it could take up to 10 minutes");
- new IAM grants: they take effect within about 2 minutes, sometimes 7 or more
  (https://cloud.google.com/iam/docs/access-change-propagation); the first
  build must not start before the build account's grants have.

The build account holds exactly what Google's page for a custom build service
account lists (https://cloud.google.com/functions/docs/securing/build-custom-sa).
"""

from __future__ import annotations

import pytest
from infra_harness import PROJECT, Graph

from infra.apis import SERVICES
from infra.build import BUILD_ROLES
from infra.observability import LOG_METRICS

SLEEP = "time:index/sleep:Sleep"
FUNCTION = "cloudfunctionsv2/function:Function"
POLICY = "monitoring/alertPolicy:AlertPolicy"


def _urn(graph: Graph, type_suffix: str, name: str) -> str:
    return graph.registration(type_suffix, name).urn


def test_the_build_account_holds_what_google_lists(graph: Graph) -> None:
    member = f"serviceAccount:{graph.account_email('build')}"
    roles = {r.get("role") for r in graph.resources if r.get("member") == member}
    assert roles == BUILD_ROLES
    assert {
        "roles/logging.logWriter",
        "roles/artifactregistry.writer",
        "roles/storage.objectViewer",
    } == BUILD_ROLES


def test_every_function_builds_with_the_stack_repository_as_the_build_account(
    graph: Graph,
) -> None:
    repository = graph.one("artifactregistry/repository:Repository")
    for function in graph.of(FUNCTION):
        assert function.get("buildConfig.dockerRepository") == repository.id


def test_builds_wait_until_the_build_grants_have_settled(graph: Graph) -> None:
    sleep = graph.one(SLEEP, createDuration="180s")
    assert sleep.name == "build-grants-settled"
    member = f"serviceAccount:{graph.account_email('build')}"
    grants = {_urn(graph, r.type, r.name) for r in graph.resources if r.get("member") == member}
    assert grants <= set(graph.registration(SLEEP, sleep.name).dependencies)
    # A grant replaced later (another account) re-arms the wait.
    assert len(sleep.get("triggers")) == len(grants)
    for function in graph.of(FUNCTION):
        assert _urn(graph, SLEEP, sleep.name) in graph.waits_for(FUNCTION, function.name)


def test_alerts_on_log_metrics_wait_for_the_metrics(graph: Graph) -> None:
    sleep = graph.one(SLEEP, createDuration="600s")
    assert sleep.name == "observability-metrics-settled"
    sleep_urn = _urn(graph, SLEEP, sleep.name)
    metric_urns = {
        _urn(graph, "logging/metric:Metric", m.name) for m in graph.of("logging/metric:Metric")
    }
    assert len(metric_urns) == len(LOG_METRICS)
    assert metric_urns <= set(graph.registration(SLEEP, sleep.name).dependencies)
    for policy in graph.of(POLICY):
        uses_log_metric = "logging.googleapis.com/user/" in policy.text()
        if uses_log_metric:
            assert sleep_urn in graph.waits_for(POLICY, policy.name), policy.name
    assert sleep_urn in graph.waits_for("monitoring/dashboard:Dashboard", "observability-dashboard")
    assert any("logging.googleapis.com/user/" in p.text() for p in graph.of(POLICY))


def test_the_waits_are_configurable(run) -> None:
    g = run(iamSettleS="0", metricSettleS="30")
    assert {s.get("createDuration") for s in g.of(SLEEP)} == {"0s", "30s"}


def test_the_connector_api_is_enabled_and_waited_for(graph: Graph) -> None:
    assert "vpcaccess.googleapis.com" in SERVICES
    api = _urn(graph, "projects/service:Service", "apis-vpcaccess")
    assert api in graph.waits_for("vpcaccess/connector:Connector", "egress-connector")


def test_every_resource_waits_for_the_apis(graph: Graph) -> None:
    """Nothing of Google's is created before the APIs it needs are on (a fresh project)."""
    apis = {_urn(graph, "projects/service:Service", f"apis-{s.split('.')[0]}") for s in SERVICES}
    for res in graph.resources:
        if not res.custom or res.type.startswith(("gcp:projects/service:", "time:", "random:")):
            continue
        assert apis <= graph.waits_for(res.type, res.name) | set(), res.name


@pytest.mark.parametrize("path", ["connector", "direct"])
def test_both_egress_paths_deploy(run, path: str) -> None:
    cidr = "10.8.0.0/28" if path == "connector" else "10.8.0.0/26"
    g = run(egressPath=path, egressSubnetCidr=cidr)
    assert not g.engine.duplicate_urns
    nat = g.one("compute/routerNat:RouterNat")
    subnet = g.one("compute/subnetwork:Subnetwork")
    assert subnet.get("ipCidrRange") == cidr
    assert nat.get("subnetworks") == [
        {"name": subnet.id, "sourceIpRangesToNats": ["ALL_IP_RANGES"]}
    ]
    assert g.outputs["project"] == PROJECT
