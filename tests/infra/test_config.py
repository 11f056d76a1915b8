"""Configuration validation: a bad value stops the program with one sentence naming the key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pulumi
import pytest
from infra_harness import BASE_CONFIG, SECRET_KEYS

from infra.config import ConfigError, Settings, load

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def _load(**overrides: str | None) -> Settings:
    config = dict(BASE_CONFIG)
    for key, value in overrides.items():
        full = key if ":" in key else f"hookpress:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    pulumi.runtime.set_all_config(config, SECRET_KEYS)
    return load(now=lambda: NOW)


def _refused(key: str, **overrides: str | None) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(**overrides)
    message = str(caught.value)
    assert key in message, message
    assert message.endswith("."), message
    assert "\n" not in message
    return message


def test_config_error_is_a_run_error() -> None:
    """Pulumi prints a RunError as its message alone, without a stack trace."""
    assert issubclass(ConfigError, pulumi.RunError)


def test_defaults() -> None:
    s = _load()
    assert (s.push.min_backoff_s, s.push.max_backoff_s) == (10, 600)
    assert s.push.max_delivery_attempts == 5
    assert s.push.ack_deadline_s == s.deliver.sizing.timeout_s == 60
    assert s.deliver.wp_concurrency_cap == 8
    assert (s.deliver.sizing.max_instances, s.deliver.sizing.concurrency) == (8, 1)
    assert (s.ingress.sizing.min_instances, s.ingress.sizing.concurrency) == (0, 32)
    assert s.ingress.sizing.memory == "512Mi"
    assert s.ingress.sizing.timeout_s == 60
    assert s.deliver.wp_base_url == "https://wp.example.com/wp-json"
    assert s.bucket.delete_after_days == 365
    assert s.bucket.soft_delete_days == 7


def test_cold_storage_is_off_unless_asked_for() -> None:
    assert _load(rawColdAfterDays=None).bucket.cold_after_days == 0


@pytest.mark.parametrize("value", ["9", "601", "0", "-5"])
def test_retry_min_backoff_must_be_within_10_and_600(value: str) -> None:
    message = _refused("hookpress:retryMinBackoffS", retryMinBackoffS=value)
    assert "between 10 and 600" in message


@pytest.mark.parametrize("value", ["9", "601"])
def test_retry_max_backoff_must_be_within_10_and_600(value: str) -> None:
    message = _refused("hookpress:retryMaxBackoffS", retryMaxBackoffS=value)
    assert "between 10 and 600" in message


def test_retry_min_backoff_not_above_max() -> None:
    _refused("hookpress:retryMinBackoffS", retryMinBackoffS="300", retryMaxBackoffS="200")


@pytest.mark.parametrize("value", ["4", "101", "0"])
def test_dead_letter_attempts_must_be_within_5_and_100(value: str) -> None:
    message = _refused("hookpress:deadLetterMaxAttempts", deadLetterMaxAttempts=value)
    assert "between 5 and 100" in message


def test_retry_and_dead_letter_bounds_are_accepted() -> None:
    s = _load(retryMinBackoffS="10", retryMaxBackoffS="600", deadLetterMaxAttempts="100")
    assert (s.push.min_backoff_s, s.push.max_backoff_s, s.push.max_delivery_attempts) == (
        10,
        600,
        100,
    )


def test_not_a_number_is_refused_with_the_key() -> None:
    message = _refused("hookpress:deadLetterMaxAttempts", deadLetterMaxAttempts="five")
    assert "whole number" in message


def test_ack_deadline_must_cover_the_deliver_timeout() -> None:
    _refused("hookpress:ackDeadlineS", deliverTimeoutS="120", ackDeadlineS="60")


def test_ack_deadline_follows_the_deliver_timeout_by_default() -> None:
    s = _load(deliverTimeoutS="120")
    assert s.push.ack_deadline_s == 120


def test_wordpress_timeouts_must_fit_in_the_deliver_timeout() -> None:
    _refused("hookpress:deliverTimeoutS", deliverTimeoutS="30", wpReadTimeoutS="30")


def test_concurrency_cap_must_divide_by_the_deliver_concurrency() -> None:
    _refused("hookpress:wpConcurrencyCap", wpConcurrencyCap="8", deliverConcurrency="3")


def test_ingress_memory_must_hold_its_concurrency_of_the_largest_bodies() -> None:
    """64 requests of 1 MiB bodies hold ~640 MiB besides the process: not in 512Mi."""
    _refused("hookpress:ingressConcurrency", ingressConcurrency="64")
    _refused("hookpress:ingressMemory", ingressConcurrency="16", maxBodyBytes="4194304")
    assert _load(ingressConcurrency="64", ingressMemory="1Gi").ingress.sizing.concurrency == 64
    smaller = _load(ingressConcurrency="64", maxBodyBytes="524288").ingress
    assert (smaller.sizing.concurrency, smaller.sizing.memory) == (64, "512Mi")
    assert _load().ingress.sizing.concurrency == 32  # the defaults fit: 96 + 32 x 10 MiB


@pytest.mark.parametrize(
    ("cpu", "memory", "refused"),
    [
        ("1", "4Gi", None),
        ("1", "5Gi", "hookpress:deliverCpu"),  # 1 vCPU: up to 4 GiB
        ("2", "8Gi", None),
        ("2", "9Gi", "hookpress:deliverCpu"),  # 2 vCPU: up to 8 GiB
        ("4", "1Gi", "hookpress:deliverCpu"),  # 4 vCPU: 2 to 16 GiB
        ("4", "2Gi", None),
        ("6", "3Gi", "hookpress:deliverCpu"),  # 6 vCPU: 4 to 24 GiB
        ("8", "32Gi", None),
        ("8", "33Gi", "hookpress:deliverMemory"),  # at most 32 Gi
    ],
)
def test_cpu_and_memory_follow_cloud_runs_table(cpu: str, memory: str, refused: str | None):
    overrides = {"deliverCpu": cpu, "deliverMemory": memory}
    if refused is None:
        assert _load(**overrides).deliver.sizing.memory == memory
    else:
        _refused(refused, **overrides)


def test_fractional_cpu_cannot_serve_concurrent_requests() -> None:
    _refused("hookpress:ingressCpu", ingressCpu="0.5", ingressConcurrency="16")


def test_min_instances_not_above_max() -> None:
    _refused("hookpress:ingressMinInstances", ingressMinInstances="5", ingressMaxInstances="2")


@pytest.mark.parametrize(
    "url",
    [
        "http://wp.example.com/wp-json",
        "https://user:pw@wp.example.com/wp-json",
        "https://wp.example.com/wp-json?x=1",
        "wp.example.com",
    ],
)
def test_wordpress_url_must_be_plain_https(url: str) -> None:
    _refused("hookpress:wpBaseUrl", wpBaseUrl=url)


def test_wordpress_url_is_required() -> None:
    _refused("hookpress:wpBaseUrl", wpBaseUrl=None)


def test_project_is_required() -> None:
    _refused("gcp:project", **{"gcp:project": None})


def test_sources_are_required() -> None:
    _refused("hookpress:sources", sources=None)


def test_unknown_scheme_is_refused() -> None:
    message = _refused("hookpress:sources", sources=json.dumps({"x": {"scheme": "md5"}}))
    assert "stripe" in message  # the sentence lists the valid schemes


def test_bad_source_name_is_refused() -> None:
    _refused("hookpress:sources", sources=json.dumps({"Bad Name": {"scheme": "github"}}))


def test_unknown_source_key_is_refused() -> None:
    _refused(
        "hookpress:sources",
        sources=json.dumps({"gh": {"scheme": "github", "secretValue": "x"}}),
    )


def test_two_sources_cannot_share_a_secret() -> None:
    _refused(
        "hookpress:sources",
        sources=json.dumps(
            {"a": {"scheme": "github", "secret": "s"}, "b": {"scheme": "github", "secret": "s"}}
        ),
    )


def test_raw_delete_must_come_after_cold() -> None:
    _refused("hookpress:rawDeleteAfterDays", rawColdAfterDays="60", rawDeleteAfterDays="30")


def test_raw_payloads_outlive_records() -> None:
    _refused("hookpress:rawDeleteAfterDays", rawDeleteAfterDays="10", rawColdAfterDays="0")


def test_soft_delete_window() -> None:
    _refused("hookpress:rawSoftDeleteDays", rawSoftDeleteDays="3")


def test_storage_class() -> None:
    _refused("hookpress:rawColdStorageClass", rawColdStorageClass="STANDARD")


def test_subnet_range() -> None:
    _refused("hookpress:egressSubnetCidr", egressSubnetCidr="10.8.0.0/30")


def test_subnet_range_without_host_bits() -> None:
    message = _refused("hookpress:egressSubnetCidr", egressSubnetCidr="10.8.0.5/28")
    assert "10.8.0.0/28" in message


def test_egress_path_defaults_to_a_connector_in_its_own_slash_28() -> None:
    s = _load()
    assert s.network.egress_path == "connector"
    assert s.network.subnet_cidr == "10.8.0.0/28"
    assert (s.network.connector_min_instances, s.network.connector_max_instances) == (2, 3)


@pytest.mark.parametrize("cidr", ["10.8.0.0/26", "10.8.0.0/24"])
def test_a_connector_needs_exactly_a_slash_28(cidr: str) -> None:
    message = _refused("hookpress:egressSubnetCidr", egressSubnetCidr=cidr)
    assert "/28" in message


def test_direct_vpc_egress_defaults_to_a_slash_26() -> None:
    s = _load(egressPath="direct")
    assert s.network.egress_path == "direct"
    assert s.network.subnet_cidr == "10.8.0.0/26"


@pytest.mark.parametrize("cidr", ["10.8.0.0/27", "10.8.0.0/28"])
def test_direct_vpc_egress_needs_google_minimum_slash_26(cidr: str) -> None:
    message = _refused("hookpress:egressSubnetCidr", egressPath="direct", egressSubnetCidr=cidr)
    assert "/26 or larger" in message


def test_direct_vpc_egress_needs_twice_the_instances() -> None:
    """A /26 has 60 usable addresses: 21 instances (2 x 21 -> 48) fit, 41 (-> 96) do not."""
    assert _load(egressPath="direct", wpConcurrencyCap="20").network.subnet_cidr
    message = _refused("hookpress:egressSubnetCidr", egressPath="direct", wpConcurrencyCap="40")
    assert "usable addresses" in message
    assert _load(egressPath="direct", wpConcurrencyCap="40", egressSubnetCidr="10.8.0.0/24")


def test_unknown_egress_path() -> None:
    _refused("hookpress:egressPath", egressPath="nat")


def test_connector_instance_bounds() -> None:
    _refused("hookpress:connectorMinInstances", connectorMinInstances="1")
    _refused(
        "hookpress:connectorMaxInstances", connectorMinInstances="4", connectorMaxInstances="4"
    )


def test_cpu_below_half_cannot_hold_more_than_512_mib() -> None:
    message = _refused("hookpress:deliverCpu", deliverCpu="0.333", deliverMemory="1Gi")
    assert "at least 0.5 CPU" in message
    assert _load(deliverCpu="0.333", deliverMemory="512Mi").deliver.sizing.cpu == "0.333"


def test_cpu_below_one_cannot_hold_more_than_1_gib() -> None:
    message = _refused("hookpress:deliverCpu", deliverCpu="0.583", deliverMemory="2Gi")
    assert "at least 1 CPU" in message


def test_egress_ip_count() -> None:
    _refused("hookpress:egressIpCount", egressIpCount="0")


def test_alert_email() -> None:
    _refused("hookpress:alertEmails", alertEmails=json.dumps(["not-an-address"]))


def test_schedule() -> None:
    _refused("hookpress:reconcileSchedule", reconcileSchedule="every 5 minutes")


def test_first_rotation_time() -> None:
    _refused("hookpress:wpPasswordFirstRotation", wpPasswordFirstRotation="tomorrow")


def _at(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "ahead", [timedelta(minutes=4, seconds=59), timedelta(0), -timedelta(days=1)]
)
def test_first_rotation_less_than_five_minutes_ahead_is_refused(ahead: timedelta) -> None:
    """Secret Manager refuses a next_rotation_time under 300 s ahead; so does the config."""
    message = _refused("hookpress:wpPasswordFirstRotation", wpPasswordFirstRotation=_at(ahead))
    assert "5 minutes" in message
    assert "pulumi config rm hookpress:wpPasswordFirstRotation" in message


def test_first_rotation_five_minutes_ahead_is_accepted() -> None:
    when = _at(timedelta(minutes=5))
    assert _load(wpPasswordFirstRotation=when).first_rotation == when


def test_first_rotation_is_ignored_without_rotation() -> None:
    s = _load(wpPasswordRotationDays="0", wpPasswordFirstRotation=_at(-timedelta(days=1)))
    assert s.first_rotation is None


def test_name_prefix() -> None:
    _refused("hookpress:namePrefix", namePrefix="Hook_Press")


def test_wordpress_secret_differs_from_source_secrets() -> None:
    _refused("hookpress:wpAppPasswordSecretId", wpAppPasswordSecretId="hookpress-source-stripe")


def test_function_url_is_the_deterministic_run_app_url() -> None:
    """https://SERVICE-PROJECT_NUMBER.REGION.run.app, Cloud Run's documented form."""
    s = _load(projectNumber="123456789012")
    assert s.function_url("deliver") == (
        "https://hookpress-deliver-123456789012.europe-west1.run.app"
    )


def test_function_url_needs_the_project_number() -> None:
    with pytest.raises(ConfigError, match="hookpress:projectNumber"):
        _load().function_url("deliver")


@pytest.mark.parametrize("number", ["0123", "12ab", "-5"])
def test_project_number_is_digits(number: str) -> None:
    _refused("hookpress:projectNumber", projectNumber=number)


def test_the_smoke_source_is_provisioned_by_default() -> None:
    sources = {s.name: s for s in _load().sources}
    smoke = sources["smoke"]
    assert (smoke.scheme, smoke.secret_id, smoke.generated) == (
        "hmac-timestamp",
        "hookpress-source-smoke",
        True,
    )
    assert "smoke" not in {s.name for s in _load(smokeSource="false").sources}


def test_a_user_source_cannot_take_the_smoke_name() -> None:
    sources = json.dumps({"smoke": {"scheme": "github"}})
    _refused("hookpress:sources", sources=sources)
    assert _load(sources=sources, smokeSource="false").sources[0].name == "smoke"


def test_settle_times() -> None:
    s = _load()
    assert (s.iam_settle_s, s.metric_settle_s) == (180, 600)
    _refused("hookpress:iamSettleS", iamSettleS="901")


def test_secret_values_are_read_only_when_managed() -> None:
    assert _load(manageSecretValues="false").wp_app_password is None
    assert _load(manageSecretValues="true").wp_app_password is not None
