"""Security and wiring properties of the resource graph, one property per test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import infra_harness
import pulumi
import pytest
from infra_harness import (
    FUNCTIONS,
    PROJECT,
    PROJECT_NUMBER,
    REGION,
    REPO,
    SECRET_VALUES,
    SOURCE_SECRETS,
    Graph,
    Res,
)

from hookpress.settings import DeliverSettings, IngressSettings
from infra import archive

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
INVOKER = "cloudrunv2/serviceIamMember:ServiceIamMember"
FUNCTION = "cloudfunctionsv2/function:Function"
SUBSCRIPTION = "pubsub/subscription:Subscription"


def _members(res: Res) -> list[str]:
    members = [res.get("member"), *list(res.get("members") or [])]
    return [m for m in members if isinstance(m, str)]


def _env(graph: Graph, short: str) -> dict[str, str]:
    return dict(graph.function(short).get("serviceConfig.environmentVariables"))


def _invokers_of(graph: Graph, short: str) -> list[Res]:
    return [r for r in graph.of(INVOKER) if r.get("name") == f"hookpress-{short}"]


def _service_url(short: str) -> str:
    """Cloud Run's deterministic service URL of a function in the test project."""
    return f"https://hookpress-{short}-{PROJECT_NUMBER}.{REGION}.run.app"


# --- exposure -----------------------------------------------------------------------------


def test_only_the_ingress_invoker_is_public(graph: Graph) -> None:
    public = [r for r in graph.resources if PUBLIC_MEMBERS & set(_members(r))]
    assert [(r.type, r.get("name"), r.get("role"), r.get("member")) for r in public] == [
        ("gcp:" + INVOKER, "hookpress-ingress", "roles/run.invoker", "allUsers")
    ]


def test_no_public_member_hides_in_any_input(graph: Graph) -> None:
    for res in graph.resources:
        text = res.text()
        if res.type.endswith(INVOKER) and res.get("name") == "hookpress-ingress":
            continue
        assert "allUsers" not in text, res.name
        assert "allAuthenticatedUsers" not in text, res.name


def test_deliver_accepts_internal_traffic_only(graph: Graph) -> None:
    assert graph.function("deliver").get("serviceConfig.ingressSettings") == "ALLOW_INTERNAL_ONLY"


def test_deliver_has_no_public_invoker(graph: Graph) -> None:
    members = [m for r in _invokers_of(graph, "deliver") for m in _members(r)]
    assert members == [f"serviceAccount:{graph.account_email('push')}"]


@pytest.mark.parametrize("short", ["reconcile", "rotate"])
def test_background_functions_are_internal_and_private(graph: Graph, short: str) -> None:
    assert graph.function(short).get("serviceConfig.ingressSettings") == "ALLOW_INTERNAL_ONLY"
    assert not PUBLIC_MEMBERS & {m for r in _invokers_of(graph, short) for m in _members(r)}


def test_ingress_is_public(graph: Graph) -> None:
    assert graph.function("ingress").get("serviceConfig.ingressSettings") == "ALLOW_ALL"


def test_each_private_function_is_invoked_only_by_its_caller(graph: Graph) -> None:
    callers = {"deliver": "push", "reconcile": "scheduler", "rotate": "rotate-push"}
    for short, caller in callers.items():
        members = sorted(m for r in _invokers_of(graph, short) for m in _members(r))
        assert members == [f"serviceAccount:{graph.account_email(caller)}"], short
        assert all(r.get("role") == "roles/run.invoker" for r in _invokers_of(graph, short))


# --- identities ---------------------------------------------------------------------------


def test_every_function_runs_as_its_own_service_account(graph: Graph) -> None:
    accounts = {
        short: graph.function(short).get("serviceConfig.serviceAccountEmail") for short in FUNCTIONS
    }
    assert accounts == {short: graph.account_email(short) for short in FUNCTIONS}
    assert len(set(accounts.values())) == len(FUNCTIONS)


def test_no_default_service_account_anywhere(graph: Graph) -> None:
    defaults = re.compile(
        r"-compute@developer\.gserviceaccount\.com|@appspot\.gserviceaccount\.com"
        r"|@cloudbuild\.gserviceaccount\.com"
    )
    for res in graph.resources:
        assert not defaults.search(res.text()), res.name


def test_builds_run_as_the_build_account(graph: Graph) -> None:
    build = f"projects/{PROJECT}/serviceAccounts/{graph.account_email('build')}"
    for short in FUNCTIONS:
        assert graph.function(short).get("buildConfig.serviceAccount") == build


def test_callers_are_not_runtime_accounts(graph: Graph) -> None:
    """The identities that invoke functions are not the ones the functions run as."""
    runtime = {graph.account_email(s) for s in FUNCTIONS}
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    job = graph.one("cloudscheduler/job:Job")
    assert sub.get("pushConfig.oidcToken.serviceAccountEmail") not in runtime
    assert job.get("httpTarget.oidcToken.serviceAccountEmail") not in runtime


# --- IAM scope ----------------------------------------------------------------------------

ALLOWED_PROJECT_ROLES = {
    # Firestore has no finer IAM; conditioned to this stack's database.
    "roles/datastore.user",
    # Cloud Build writes build logs.
    "roles/logging.logWriter",
    # Conditioned to the gcf-v2-sources-* staging buckets.
    "roles/storage.objectViewer",
}
CONDITIONED_PROJECT_ROLES = {"roles/datastore.user", "roles/storage.objectViewer"}


def test_no_authoritative_project_iam(graph: Graph) -> None:
    """IAMBinding/IAMPolicy at project level would strip everyone else's grants."""
    assert not graph.of("projects/iAMBinding:IAMBinding")
    assert not graph.of("projects/iAMPolicy:IAMPolicy")


def test_project_level_roles_are_narrow(graph: Graph) -> None:
    roles = {r.get("role") for r in graph.of("projects/iAMMember:IAMMember")}
    assert roles <= ALLOWED_PROJECT_ROLES
    assert not roles & {
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountTokenCreator",
    }


def test_wide_project_roles_carry_a_condition(graph: Graph) -> None:
    for res in graph.of("projects/iAMMember:IAMMember"):
        if res.get("role") in CONDITIONED_PROJECT_ROLES:
            assert res.get("condition.expression"), res.name


def test_firestore_access_is_limited_to_the_stack_database(graph: Graph) -> None:
    grants = [
        r
        for r in graph.of("projects/iAMMember:IAMMember")
        if r.get("role") == "roles/datastore.user"
    ]
    assert {r.get("member") for r in grants} == {
        f"serviceAccount:{graph.account_email(s)}" for s in ("ingress", "deliver", "reconcile")
    }
    for res in grants:
        assert res.get("condition.expression") == (
            f'resource.name == "projects/{PROJECT}/databases/(default)"'
        )


def test_no_iam_binding_is_declared_twice(graph: Graph) -> None:
    """Two IAM member resources for one binding: deleting either removes it for both."""
    seen: set[tuple[str, str, str, str]] = set()
    for res in graph.resources:
        if not res.get("role") or not res.get("member"):
            continue
        target = json.dumps(
            {k: v for k, v in res.inputs.items() if k not in {"role", "member", "condition"}},
            sort_keys=True,
        )
        key = (res.type, target, res.get("role"), res.get("member"))
        assert key not in seen, f"{res.type} {res.name} repeats a binding"
        seen.add(key)


def test_token_creator_only_on_push_identities(graph: Graph) -> None:
    grants = graph.of("serviceaccount/iAMMember:IAMMember")
    assert {r.get("role") for r in grants} == {"roles/iam.serviceAccountTokenCreator"}
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert {r.get("member") for r in grants} == {agent}
    assert {r.get("serviceAccountId") for r in grants} == {
        f"projects/{PROJECT}/serviceAccounts/{graph.account_email(a)}"
        for a in ("push", "rotate-push")
    }


def test_ingress_may_create_but_not_read_or_delete_raw_objects(graph: Graph) -> None:
    """Storage Object Creator creates objects and neither reads, replaces nor deletes
    them (https://cloud.google.com/storage/docs/access-control/iam-roles): so a copy of a
    GitHub or Shopify body leaves the object it uploaded (ingress/_pipeline.py)."""
    ingress = f"serviceAccount:{graph.account_email('ingress')}"
    roles = {
        r.get("role")
        for r in graph.of("storage/bucketIAMMember:BucketIAMMember")
        if r.get("member") == ingress
    }
    assert roles == {"roles/storage.objectCreator"}


def test_deliver_reads_raw_objects_only(graph: Graph) -> None:
    deliver = f"serviceAccount:{graph.account_email('deliver')}"
    roles = {
        r.get("role")
        for r in graph.of("storage/bucketIAMMember:BucketIAMMember")
        if r.get("member") == deliver
    }
    assert roles == {"roles/storage.objectViewer"}


def test_ingress_reads_exactly_its_sources_secrets(graph: Graph) -> None:
    ingress = f"serviceAccount:{graph.account_email('ingress')}"
    grants = [
        r
        for r in graph.of("secretmanager/secretIamMember:SecretIamMember")
        if r.get("member") == ingress
    ]
    assert {r.get("secretId") for r in grants} == {
        "hookpress-source-stripe",
        "hookpress-source-github",
        "openai-signing",
        "hookpress-source-smoke",
    }
    assert {r.get("role") for r in grants} == {
        "roles/secretmanager.secretAccessor",
        "roles/secretmanager.viewer",
    }


def test_only_deliver_and_rotate_touch_the_wordpress_secret(graph: Graph) -> None:
    grants = [
        r
        for r in graph.of("secretmanager/secretIamMember:SecretIamMember")
        if r.get("secretId") == "hookpress-wp-app-password"
    ]
    assert {r.get("member") for r in grants} == {
        f"serviceAccount:{graph.account_email(s)}" for s in ("deliver", "rotate")
    }
    deliver_roles = {
        r.get("role") for r in grants if r.get("member").endswith(graph.account_email("deliver"))
    }
    assert "roles/secretmanager.secretVersionManager" not in deliver_roles


def test_publishers_of_events(graph: Graph) -> None:
    grants = [
        r for r in graph.of("pubsub/topicIAMMember:TopicIAMMember") if r.get("topic") == "events"
    ]
    assert {(r.get("role"), r.get("member")) for r in grants} == {
        ("roles/pubsub.publisher", f"serviceAccount:{graph.account_email(s)}")
        for s in ("ingress", "reconcile")
    }


# --- buckets ------------------------------------------------------------------------------


def test_every_bucket_has_uniform_access_and_enforced_public_access_prevention(
    graph: Graph,
) -> None:
    buckets = graph.of("storage/bucket:Bucket")
    assert {b.get("name") for b in buckets} == {
        f"{PROJECT}-hookpress-raw",
        f"{PROJECT}-hookpress-sources",
    }
    for bucket in buckets:
        assert bucket.get("uniformBucketLevelAccess") is True, bucket.name
        assert bucket.get("publicAccessPrevention") == "enforced", bucket.name
        assert bucket.get("forceDestroy") is False, bucket.name


def test_raw_bucket_lifecycle_and_soft_delete(graph: Graph) -> None:
    raw = graph.one("storage/bucket:Bucket", name=f"{PROJECT}-hookpress-raw")
    rules = raw.get("lifecycleRules")
    assert {(r["action"]["type"], r["condition"]["age"]) for r in rules} == {
        ("SetStorageClass", 30),
        ("Delete", 365),
    }
    assert raw.get("softDeletePolicy.retentionDurationSeconds") == 7 * 86_400


def test_raw_objects_stay_standard_by_default(run) -> None:
    g = run(rawColdAfterDays="0")
    raw = g.one("storage/bucket:Bucket", name=f"{PROJECT}-hookpress-raw")
    assert [r["action"]["type"] for r in raw.get("lifecycleRules")] == ["Delete"]


# --- Pub/Sub ------------------------------------------------------------------------------


def test_push_subscription_signs_with_oidc_for_deliver(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    deliver_url = _service_url("deliver")
    assert sub.get("pushConfig.pushEndpoint") == deliver_url
    assert sub.get("pushConfig.oidcToken") == {
        "serviceAccountEmail": graph.account_email("push"),
        "audience": deliver_url,
    }


def test_deliver_checks_the_audience_the_subscription_signs(graph: Graph) -> None:
    env = _env(graph, "deliver")
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    assert env["HOOKPRESS_PUSH_AUTH"] == "oidc"
    assert env["HOOKPRESS_PUSH_AUDIENCE"] == sub.get("pushConfig.oidcToken.audience")
    assert env["HOOKPRESS_PUSH_SERVICE_ACCOUNT"] == sub.get(
        "pushConfig.oidcToken.serviceAccountEmail"
    )


def test_push_subscription_has_a_retry_policy(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    assert sub.get("retryPolicy") == {"minimumBackoff": "10s", "maximumBackoff": "600s"}


def test_push_subscription_has_a_dead_letter_policy(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    assert sub.get("deadLetterPolicy") == {
        "deadLetterTopic": f"projects/{PROJECT}/topics/events-dead",
        "maxDeliveryAttempts": 5,
    }


def test_push_subscription_never_expires(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    assert sub.get("expirationPolicy") == {"ttl": ""}
    assert sub.get("topic") == f"projects/{PROJECT}/topics/events"


def test_ack_deadline_covers_the_deliver_timeout(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-deliver")
    timeout = graph.function("deliver").get("serviceConfig.timeoutSeconds")
    assert sub.get("ackDeadlineSeconds") >= timeout


def test_dead_letter_topic_has_a_pull_subscription_kept_seven_days(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-dead-pull")
    assert sub.get("topic") == f"projects/{PROJECT}/topics/events-dead"
    assert sub.get("messageRetentionDuration") == "604800s"
    assert sub.get("pushConfig") is None
    assert sub.get("expirationPolicy") == {"ttl": ""}


def test_dead_letters_are_pushed_to_deliver_dead_with_the_same_identity(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="events-dead-deliver")
    deliver_url = _service_url("deliver")
    assert sub.get("topic") == f"projects/{PROJECT}/topics/events-dead"
    assert sub.get("pushConfig.pushEndpoint") == f"{deliver_url}/dead"
    # deliver checks one audience: its URL, whatever the path.
    assert sub.get("pushConfig.oidcToken") == {
        "serviceAccountEmail": graph.account_email("push"),
        "audience": deliver_url,
    }
    assert sub.get("retryPolicy") == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
    assert sub.get("deadLetterPolicy") is None
    assert sub.get("expirationPolicy") == {"ttl": ""}


def test_pubsub_agent_publishes_to_the_dead_letter_topic(graph: Graph) -> None:
    grant = graph.one("pubsub/topicIAMMember:TopicIAMMember", topic="events-dead")
    assert grant.get("role") == "roles/pubsub.publisher"
    assert (
        grant.get("member")
        == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    )


def test_pubsub_agent_subscribes_to_the_push_subscription(graph: Graph) -> None:
    grant = graph.one(
        "pubsub/subscriptionIAMMember:SubscriptionIAMMember", subscription="events-deliver"
    )
    assert grant.get("role") == "roles/pubsub.subscriber"
    assert (
        grant.get("member")
        == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    )


# --- egress -------------------------------------------------------------------------------


def test_nat_uses_only_the_reserved_addresses(graph: Graph) -> None:
    nat = graph.one("compute/routerNat:RouterNat")
    addresses = graph.of("compute/address:Address")
    assert len(addresses) == 2
    assert nat.get("natIpAllocateOption") == "MANUAL_ONLY"
    assert sorted(nat.get("natIps")) == sorted(a.outputs["selfLink"] for a in addresses)
    assert all(a.get("addressType") == "EXTERNAL" for a in addresses)


def test_nat_covers_the_egress_subnet(graph: Graph) -> None:
    nat = graph.one("compute/routerNat:RouterNat")
    subnet = graph.one("compute/subnetwork:Subnetwork")
    assert nat.get("sourceSubnetworkIpRangesToNat") == "LIST_OF_SUBNETWORKS"
    assert nat.get("subnetworks") == [
        {"name": subnet.id, "sourceIpRangesToNats": ["ALL_IP_RANGES"]}
    ]
    assert subnet.get("privateIpGoogleAccess") is True


@pytest.mark.parametrize("short", ["deliver", "rotate"])
def test_wordpress_callers_leave_through_the_connector(graph: Graph, short: str) -> None:
    service = graph.function(short).get("serviceConfig")
    connector = graph.one("vpcaccess/connector:Connector")
    assert service["vpcConnector"] == connector.id
    assert service["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    assert service.get("directVpcEgress") is None
    assert connector.get("subnet") == {"name": "hookpress-egress"}
    assert (connector.get("minInstances"), connector.get("maxInstances")) == (2, 3)


@pytest.mark.parametrize("short", ["ingress", "reconcile"])
def test_functions_that_never_call_wordpress_have_no_vpc(graph: Graph, short: str) -> None:
    service = graph.function(short).get("serviceConfig")
    assert service.get("vpcConnector") is None
    assert service.get("directVpcEgress") is None


@pytest.mark.parametrize("short", ["deliver", "rotate"])
def test_direct_vpc_egress_when_chosen(run, short: str) -> None:
    g = run(egressPath="direct", egressSubnetCidr="10.8.0.0/26")
    service = g.function(short).get("serviceConfig")
    assert service["directVpcEgress"] == "VPC_EGRESS_ALL_TRAFFIC"
    assert service["directVpcNetworkInterfaces"] == [
        {"network": "hookpress-vpc", "subnetwork": "hookpress-egress"}
    ]
    assert service.get("vpcConnector") is None
    assert not g.of("vpcaccess/connector:Connector")


def test_egress_ips_are_a_stack_output(graph: Graph) -> None:
    assert graph.outputs["egressIps"] == ["203.0.113.1", "203.0.113.2"]


# --- secrets ------------------------------------------------------------------------------


def test_secret_values_reach_secret_manager_only(graph: Graph) -> None:
    for res in graph.resources:
        text = res.text()
        leaked = [v for v in SECRET_VALUES if v in text]
        if res.name == "secrets-source-smoke-version":
            assert not leaked  # generated, see the smoke tests
        elif res.type.endswith("secretmanager/secretVersion:SecretVersion"):
            assert len(leaked) == 1, res.name
        else:
            assert not leaked, f"a secret value reached {res.type} {res.name}"


def test_no_secret_value_in_any_environment_variable(graph: Graph) -> None:
    for short in FUNCTIONS:
        service = graph.function(short).get("serviceConfig")
        values = " ".join(_env(graph, short).values())
        assert not any(secret in values for secret in SECRET_VALUES), short
        assert not service.get("secretEnvironmentVariables"), short
        assert not service.get("secretVolumes"), short


def test_secrets_are_named_by_id_and_read_from_secret_manager(graph: Graph) -> None:
    ingress, deliver = _env(graph, "ingress"), _env(graph, "deliver")
    sources = json.loads(ingress["HOOKPRESS_SOURCES"])
    assert {name: spec["secret"] for name, spec in sources.items()} == {
        "stripe": "hookpress-source-stripe",
        "github": "hookpress-source-github",
        "openai": "openai-signing",
        "smoke": "hookpress-source-smoke",
    }
    assert deliver["HOOKPRESS_WP_APP_PASSWORD_SECRET"] == "hookpress-wp-app-password"
    for short in FUNCTIONS:
        env = _env(graph, short)
        assert "HOOKPRESS_SECRETS_BACKEND" not in env, short
        assert "HOOKPRESS_SECRETS_FILE" not in env, short
        assert not [k for k in env if k.startswith("HOOKPRESS_SECRET_")], short


def test_each_source_has_its_own_secret(graph: Graph) -> None:
    secrets = {r.get("secretId") for r in graph.of("secretmanager/secret:Secret")}
    assert secrets == {
        "hookpress-source-stripe",
        "hookpress-source-github",
        "openai-signing",
        "hookpress-source-smoke",
        "hookpress-wp-app-password",
    }
    assert {*SOURCE_SECRETS, "smoke"} == set(
        json.loads(_env(graph, "ingress")["HOOKPRESS_SOURCES"])
    )


def test_the_smoke_source_secret_is_generated_by_the_program(graph: Graph) -> None:
    password = graph.one("random:index/randomPassword:RandomPassword")
    assert (password.name, password.get("length"), password.get("special")) == (
        "secrets-source-smoke-value",
        48,
        False,
    )
    version = next(r for r in graph.resources if r.name == "secrets-source-smoke-version")
    assert version.get("secret") == f"projects/{PROJECT}/secrets/hookpress-source-smoke"
    assert version.get("secretData") == password.outputs["result"]
    assert graph.outputs["smoke"]["source"] == "smoke"


def test_no_smoke_source_when_turned_off(run) -> None:
    g = run(smokeSource="false")
    assert not g.of("random:index/randomPassword:RandomPassword")
    assert "smoke" not in g.outputs["sources"]
    assert g.outputs["smoke"]["source"] is None


def test_wordpress_secret_rotates_through_the_rotation_topic(graph: Graph) -> None:
    secret = graph.one("secretmanager/secret:Secret", secretId="hookpress-wp-app-password")
    assert secret.get("rotation.rotationPeriod") == f"{30 * 86_400}s"
    assert secret.get("rotation.nextRotationTime")
    assert secret.get("topics") == [
        {"name": f"projects/{PROJECT}/topics/hookpress-secret-rotation"}
    ]
    grant = graph.one("pubsub/topicIAMMember:TopicIAMMember", topic="hookpress-secret-rotation")
    assert grant.get("member") == (
        "serviceAccount:service-123456789012@gcp-sa-secretmanager.iam.gserviceaccount.com"
    )
    assert grant.get("role") == "roles/pubsub.publisher"


def test_rotate_is_pushed_only_rotation_events(graph: Graph) -> None:
    sub = graph.one(SUBSCRIPTION, name="hookpress-secret-rotation-rotate")
    assert sub.get("topic") == f"projects/{PROJECT}/topics/hookpress-secret-rotation"
    assert sub.get("filter") == 'attributes.eventType = "SECRET_ROTATE"'
    assert sub.get("pushConfig.oidcToken") == {
        "serviceAccountEmail": graph.account_email("rotate-push"),
        "audience": _service_url("rotate"),
    }
    assert sub.get("ackDeadlineSeconds") >= graph.function("rotate").get(
        "serviceConfig.timeoutSeconds"
    )


def test_rotation_off_means_no_rotate_function(run) -> None:
    g = run(wpPasswordRotationDays="0")
    assert not [r for r in g.of(FUNCTION) if r.get("name") == "hookpress-rotate"]
    secret = g.one("secretmanager/secret:Secret", secretId="hookpress-wp-app-password")
    assert secret.get("rotation") is None
    assert not [r for r in g.of("pubsub/topic:Topic") if "rotation" in r.get("name")]


def test_secret_values_are_optional(run) -> None:
    g = run(manageSecretValues="false")
    versions = g.of("secretmanager/secretVersion:SecretVersion")
    assert [v.name for v in versions] == ["secrets-source-smoke-version"]


# --- functions ----------------------------------------------------------------------------


def test_deliver_capacity_equals_the_wordpress_concurrency_cap(graph: Graph) -> None:
    service = graph.function("deliver").get("serviceConfig")
    assert service["maxInstanceCount"] * service["maxInstanceRequestConcurrency"] == 8


def test_deliver_capacity_follows_the_configured_cap(run) -> None:
    g = run(wpConcurrencyCap="12", deliverConcurrency="3")
    service = g.function("deliver").get("serviceConfig")
    assert (service["maxInstanceCount"], service["maxInstanceRequestConcurrency"]) == (4, 3)
    assert float(service["availableCpu"]) >= 1  # concurrency above 1 needs a whole CPU


def test_ingress_sizing(graph: Graph) -> None:
    service = graph.function("ingress").get("serviceConfig")
    assert service["minInstanceCount"] == 0
    assert service["maxInstanceRequestConcurrency"] == 32
    assert service["availableMemory"] == "512Mi"
    assert service["timeoutSeconds"] == 60
    assert service["availableCpu"] == "1"


def test_ingress_sizing_is_configurable(run) -> None:
    g = run(ingressMinInstances="1", ingressConcurrency="40")
    service = g.function("ingress").get("serviceConfig")
    assert (service["minInstanceCount"], service["maxInstanceRequestConcurrency"]) == (1, 40)


def test_functions_run_python312_with_their_entry_points(graph: Graph) -> None:
    for short in FUNCTIONS:
        build = graph.function(short).get("buildConfig")
        assert build["runtime"] == "python312"
        assert build["entryPoint"] == short


def test_ingress_environment_is_what_ingress_settings_reads(graph: Graph) -> None:
    settings = IngressSettings.from_env(_env(graph, "ingress"))
    assert settings.project == PROJECT
    assert settings.raw_bucket == f"{PROJECT}-hookpress-raw"
    assert settings.events_topic == "events"
    assert settings.secrets.backend == "secretmanager"
    assert set(settings.sources) == {"stripe", "github", "openai", "smoke"}


def test_deliver_environment_is_what_deliver_settings_reads(graph: Graph) -> None:
    settings = DeliverSettings.from_env(_env(graph, "deliver"))
    assert settings.push_auth == "oidc"
    assert settings.push_audience == _service_url("deliver")
    assert settings.push_service_account == graph.account_email("push")
    assert settings.wp_base_url == "https://wp.example.com/wp-json"
    assert settings.secrets.backend == "secretmanager"
    assert settings.paused is False


@pytest.mark.parametrize("short", ["ingress", "deliver"])
def test_environment_sets_only_variables_the_settings_read(graph: Graph, short: str) -> None:
    core = REPO / "functions" / "hookpress"
    text = "".join((core / f).read_text() for f in ("settings.py", "config_rules.py"))
    known = set(re.findall(r'"(HOOKPRESS_[A-Z_]+)"', text))
    # and functions-framework's own server settings (gunicorn workers and threads)
    assert set(_env(graph, short)) <= known | {"WORKERS", "THREADS"}


@pytest.mark.parametrize("short", ["ingress", "deliver"])
def test_the_server_has_a_thread_per_concurrent_request(graph: Graph, short: str) -> None:
    env = _env(graph, short)
    service = graph.function(short).get("serviceConfig")
    assert env["WORKERS"] == "1"
    assert int(env["THREADS"]) == int(service["maxInstanceRequestConcurrency"])


def test_archive_objects_are_named_by_content(graph: Graph, functions_root: Path) -> None:
    objects = {r.get("name") for r in graph.of("storage/bucketObject:BucketObject")}
    expected = {
        archive.object_name(
            short, archive.collect(functions_root / short, functions_root / "hookpress")
        )
        for short in FUNCTIONS
    }
    assert objects == expected
    for short in FUNCTIONS:
        source = graph.function(short).get("buildConfig.source.storageSource")
        assert source["bucket"] == f"{PROJECT}-hookpress-sources"
        assert source["object"].startswith(f"{short}/")


# --- Firestore, scheduler, observability, outputs -----------------------------------------


def test_firestore_is_native_with_a_ttl_on_expire_at(graph: Graph) -> None:
    database = graph.one("firestore/database:Database")
    assert database.get("type") == "FIRESTORE_NATIVE"
    assert database.get("deleteProtectionState") == "DELETE_PROTECTION_ENABLED"
    fields = {f.get("collection"): f for f in graph.of("firestore/field:Field")}
    # the body markers (hookpress.events.first_provider_id) live as long as the records
    assert sorted(fields) == ["events", "events-bodies"]
    for field in fields.values():
        assert field.get("field") == "expire_at"
        assert field.get("ttlConfig") == {}
        assert field.get("indexConfig") == {"indexes": []} or field.get("indexConfig") == {}


def test_the_status_queries_have_composite_indexes(graph: Graph) -> None:
    """The reconciler's sweep and the CLI's listings query by status and a time field."""
    found = {
        tuple((f["fieldPath"], f["order"]) for f in index.get("fields"))
        for index in graph.of("firestore/index:Index")
        if index.get("collection") == "events"
    }
    assert found == {
        (("status", "ASCENDING"), ("updated_at", "ASCENDING")),
        (("status", "ASCENDING"), ("received_at", "ASCENDING")),
    }


def test_reconcile_runs_on_a_schedule_with_oidc(graph: Graph) -> None:
    job = graph.one("cloudscheduler/job:Job")
    url = _service_url("reconcile")
    assert job.get("schedule") == "*/5 * * * *"
    assert job.get("httpTarget.uri") == url
    assert job.get("httpTarget.oidcToken") == {
        "serviceAccountEmail": graph.account_email("scheduler"),
        "audience": url,
    }


def test_alerts_cover_dead_letters_backlog_5xx_and_failures(graph: Graph) -> None:
    policies = {p.name: p for p in graph.of("monitoring/alertPolicy:AlertPolicy")}
    policies = {p.name.removeprefix("observability-"): p for p in policies.values()}
    assert set(policies) == {
        "alert-dead-letters",
        "alert-oldest-unacked",
        "alert-ingress-5xx",
        "alert-delivery-failures",
    }
    dead = policies["alert-dead-letters"].get("conditions.0.conditionThreshold")
    assert 'subscription_id="events-dead-pull"' in dead["filter"]
    assert dead["thresholdValue"] == 0
    age = policies["alert-oldest-unacked"].get("conditions.0.conditionThreshold")
    assert 'subscription_id="events-deliver"' in age["filter"]
    assert "oldest_unacked_message_age" in age["filter"]
    channels = [
        c.outputs.get("name", c.name)
        for c in graph.of("monitoring/notificationChannel:NotificationChannel")
    ]
    assert len(channels) == 1
    for policy in policies.values():
        assert len(policy.get("notificationChannels")) == 1


def test_log_metrics_count_each_outcome(graph: Graph) -> None:
    metrics = {m.get("name"): m for m in graph.of("logging/metric:Metric")}
    assert set(metrics) == {
        f"hookpress-{k}"
        for k in ("accepted", "duplicate", "rejected", "delivered", "failed", "dead")
    }
    rejected = metrics["hookpress-rejected"]
    assert set(rejected.get("labelExtractors")) == {"outcome", "reason"}
    # An unknown source name comes from the caller: never a label (unbounded cardinality).
    assert "source" not in rejected.get("labelExtractors")


def test_dashboard_is_valid_json(graph: Graph) -> None:
    dashboard = json.loads(graph.one("monitoring/dashboard:Dashboard").get("dashboardJson"))
    assert len(dashboard["mosaicLayout"]["tiles"]) >= 9


def test_stack_outputs(graph: Graph) -> None:
    out = graph.outputs
    assert out["project"] == PROJECT
    assert set(out["sources"]) == {"stripe", "github", "openai", "smoke"}
    assert out["sources"]["openai"]["scheme"] == "standard-webhooks"
    assert out["sources"]["stripe"]["secret"] == "hookpress-source-stripe"
    ingress_url = graph.function("ingress").outputs["url"]
    assert out["ingressUrl"] == ingress_url
    assert out["ingressUrls"] == {
        s: f"{ingress_url}/{s}" for s in ("stripe", "github", "openai", "smoke")
    }
    assert out["deliverUrl"] == _service_url("deliver")
    assert out["functionUrls"] == {
        "ingress": ingress_url,
        **{short: _service_url(short) for short in ("deliver", "reconcile", "rotate")},
    }
    assert out["smoke"] == {
        "source": "smoke",
        "reconcileJob": "hookpress-reconcile",
        "reconcileSchedule": "*/5 * * * *",
        "region": REGION,
    }
    assert out["rawBucket"] == f"{PROJECT}-hookpress-raw"
    assert out["topics"] == {
        "events": "events",
        "eventsDead": "events-dead",
        "secretRotation": "hookpress-secret-rotation",
    }
    assert out["subscriptions"] == {
        "deliverPush": "events-deliver",
        "deadLetterPush": "events-dead-deliver",
        "eventsDeadPull": "events-dead-pull",
    }
    assert set(out["serviceAccounts"]) == {
        "ingress",
        "deliver",
        "reconcile",
        "rotate",
        "push",
        "rotate-push",
        "scheduler",
        "build",
    }
    assert not any(secret in json.dumps(out) for secret in SECRET_VALUES)


def test_apis_stay_enabled_on_destroy(graph: Graph) -> None:
    services = graph.of("projects/service:Service")
    assert {"cloudfunctions.googleapis.com", "run.googleapis.com", "pubsub.googleapis.com"} <= {
        s.get("service") for s in services
    }
    assert all(s.get("disableOnDestroy") is False for s in services)


def test_an_unexpected_service_url_fails_the_update(functions_root: Path, monkeypatch) -> None:
    """deliver is told its URL before it exists; if Cloud Run lacks that URL, pulumi up stops."""
    original = infra_harness.Recorder.call

    def call(self, args):
        ret, failures = original(self, args)
        if args.token.endswith("getService") and args.args["name"] == "hookpress-deliver":
            ret["urls"] = ["https://hookpress-deliver-xyz-ew.a.run.app"]
        return ret, failures

    monkeypatch.setattr(infra_harness.Recorder, "call", call)
    with pytest.raises(pulumi.RunError, match="OIDC audience"):
        infra_harness.run_program(
            infra_harness.BASE_CONFIG, functions_root, secret_keys=infra_harness.SECRET_KEYS
        )
