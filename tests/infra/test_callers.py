"""Private functions are called where Google counts the caller internal, at the audience they check.

deliver, reconcile and rotate accept internal traffic only. Pub/Sub push and
Cloud Scheduler count as internal callers only at the service's ``run.app``
URL (https://cloud.google.com/run/docs/securing/ingress), and Cloud Run checks
that the token's audience is that URL
(https://cloud.google.com/run/docs/configuring/custom-audiences). The program
therefore calls them at the deterministic form
``https://SERVICE-PROJECT_NUMBER.REGION.run.app``
(https://cloud.google.com/run/docs/triggering/https-request#deterministic),
known before they exist. For every push subscription and scheduler job, the
endpoint, the OIDC audience and the audience the function itself checks (read
with the function's own settings reader) must be one URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest
from infra_harness import PROJECT_NUMBER, REGION, Graph

from hookpress.settings import DeliverSettings, ReconcileSettings, RotateSettings

FUNCTION = "cloudfunctionsv2/function:Function"
READERS = {"deliver": DeliverSettings, "reconcile": ReconcileSettings, "rotate": RotateSettings}
# The paths each private function serves (deliver/_http.py: / and /dead).
PATHS = {"deliver": {"", "/dead"}, "reconcile": {""}, "rotate": {""}}
RUN_APP = re.compile(
    rf"^https://hookpress-(?P<short>[a-z]+)-{PROJECT_NUMBER}\.{re.escape(REGION)}\.run\.app$"
)


@dataclass(frozen=True)
class Caller:
    """One push subscription or scheduler job: where it calls, as whom, for which audience."""

    what: str
    endpoint: str
    audience: str
    identity: str


def callers(graph: Graph) -> list[Caller]:
    found = [
        Caller(
            f"subscription {sub.get('name')}",
            sub.get("pushConfig.pushEndpoint"),
            sub.get("pushConfig.oidcToken.audience"),
            sub.get("pushConfig.oidcToken.serviceAccountEmail"),
        )
        for sub in graph.of("pubsub/subscription:Subscription")
        if sub.get("pushConfig") is not None
    ]
    found += [
        Caller(
            f"scheduler job {job.get('name')}",
            job.get("httpTarget.uri"),
            job.get("httpTarget.oidcToken.audience"),
            job.get("httpTarget.oidcToken.serviceAccountEmail"),
        )
        for job in graph.of("cloudscheduler/job:Job")
    ]
    return found


def agreement(graph: Graph, caller: Caller) -> list[str]:
    """Every way this caller disagrees with its function (empty: they agree)."""
    problems: list[str] = []
    match = RUN_APP.match(caller.audience or "")
    if match is None:
        return [f"{caller.what}: audience {caller.audience} is not a deterministic run.app URL"]
    short = match["short"]
    path = (caller.endpoint or "").removeprefix(caller.audience)
    if not caller.endpoint.startswith(caller.audience) or path not in PATHS[short]:
        problems.append(f"{caller.what}: endpoint {caller.endpoint} is not {caller.audience}+path")
    function = graph.one(FUNCTION, name=f"hookpress-{short}")
    service = function.get("serviceConfig")
    checked = READERS[short].from_env(dict(service["environmentVariables"]))
    if checked.push_auth != "oidc":
        problems.append(f"hookpress-{short} does not check its callers")
    if checked.push_audience != caller.audience:
        problems.append(f"hookpress-{short} checks {checked.push_audience}, not {caller.audience}")
    if checked.push_service_account != caller.identity:
        problems.append(f"hookpress-{short} expects {checked.push_service_account}")
    if service["ingressSettings"] != "ALLOW_INTERNAL_ONLY":
        problems.append(f"hookpress-{short} is not internal-only")
    invokers = {
        r.get("member")
        for r in graph.of("cloudrunv2/serviceIamMember:ServiceIamMember")
        if r.get("name") == f"hookpress-{short}" and r.get("role") == "roles/run.invoker"
    }
    if f"serviceAccount:{caller.identity}" not in invokers:
        problems.append(f"{caller.identity} cannot invoke hookpress-{short}")
    return problems


def test_endpoint_audience_and_the_functions_check_agree(graph: Graph) -> None:
    found = callers(graph)
    # events-deliver, events-dead-deliver, the rotation subscription, the reconcile job.
    assert len(found) == 4, [c.what for c in found]
    problems = [p for caller in found for p in agreement(graph, caller)]
    agreeing = sum(not agreement(graph, caller) for caller in found)
    assert problems == [], problems
    assert agreeing / len(found) == 1.0


@pytest.mark.parametrize(
    "overrides",
    [
        {"wpPasswordRotationDays": "0"},
        {"egressPath": "direct", "egressSubnetCidr": "10.8.0.0/26"},
        {"namePrefix": "hp-prod"},
    ],
    ids=["no-rotation", "direct-egress", "prefix"],
)
def test_they_agree_in_other_configurations(run, overrides) -> None:
    g = run(**overrides)
    prefix = overrides.get("namePrefix", "hookpress")
    for caller in callers(g):
        short = caller.audience.split(f"{prefix}-", 1)[1].split("-", 1)[0]
        assert caller.audience == f"https://{prefix}-{short}-{PROJECT_NUMBER}.{REGION}.run.app"
        env = dict(
            g.one(FUNCTION, name=f"{prefix}-{short}").get("serviceConfig.environmentVariables")
        )
        assert READERS[short].from_env(env).push_audience == caller.audience
        assert caller.endpoint.removeprefix(caller.audience) in PATHS[short]


def test_no_caller_uses_the_cloudfunctions_url(graph: Graph) -> None:
    for caller in callers(graph):
        assert "cloudfunctions.net" not in caller.endpoint + caller.audience, caller.what


def test_a_disagreement_is_found(graph: Graph) -> None:
    """The check itself: a job pointing at the cloudfunctions.net URL is reported."""
    job = next(c for c in callers(graph) if c.what.startswith("scheduler"))
    wrong = Caller(job.what, f"https://{REGION}-x.cloudfunctions.net/hookpress-reconcile",
                   job.audience, job.identity)  # fmt: skip
    assert agreement(graph, wrong)
    assert agreement(graph, Caller(job.what, job.endpoint, job.audience, "someone@else"))


def test_the_project_number_is_looked_up_unless_configured(graph: Graph, run) -> None:
    lookup = "gcp:organizations/getProject:getProject"
    assert graph.calls.count(lookup) == 1
    g = run(projectNumber=PROJECT_NUMBER)
    assert lookup not in g.calls
    assert {c.audience for c in callers(g)} == {c.audience for c in callers(graph)}


def test_a_wrong_project_number_stops_the_update(run) -> None:
    """Cloud Run does not answer at the predicted URL: pulumi up fails with a sentence."""
    with pytest.raises(pulumi.RunError, match=r"not at https://hookpress-[a-z]+-987654321098"):
        run(projectNumber="987654321098")


def test_the_program_never_trusts_local_test_keys(graph: Graph) -> None:
    """HOOKPRESS_PUSH_TEST_CERTS is for nox -s rehearse; no deployed function gets it."""
    from hookpress.pushauth import TEST_CERTS_VARIABLE

    for function in graph.of(FUNCTION):
        env = function.get("serviceConfig.environmentVariables")
        assert TEST_CERTS_VARIABLE not in env, function.name
        assert env.get("HOOKPRESS_PUSH_AUTH", "oidc") == "oidc", function.name
    infra = Path(__file__).resolve().parents[2] / "infra"
    for source in infra.glob("*.py"):
        assert "PUSH_TEST_CERTS" not in source.read_text(), source.name
