"""Configuration: one typed, immutable settings object per function, read once.

Nothing here runs at import time. ``IngressSettings.from_env()`` and
``DeliverSettings.from_env()`` are called when an instance builds its runtime;
every missing or invalid value raises :class:`SettingsError` with a sentence
that names the variable, so a misconfigured deployment says what is wrong in
its first log line instead of failing three calls later.

Every variable is documented in the README's configuration reference; the
Pulumi program (``infra/``) sets them on the deployed functions. The rules
both sides apply (the source map, the secret-id pattern, how numbers and
switches are read, each variable's default and bounds) are
:mod:`hookpress.config_rules`'s; this module assembles them per function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from hookpress import config_rules as rules
from hookpress.config_rules import SettingsError, SourceConfig, parse_source, text
from hookpress.lanes import LANES

__all__ = [
    "LANES",
    "DeliverSettings",
    "IngressSettings",
    "ReconcileSettings",
    "RotateSettings",
    "SecretsConfig",
    "SettingsError",
    "SourceConfig",
    "parse_source",
]

SecretsBackend = Literal["secretmanager", "env", "file"]


class SecretsConfig(msgspec.Struct, frozen=True):
    """Where secret values come from.

    ``secretmanager`` is the default and the only backend for the cloud.
    ``env`` and ``file`` exist for the local stack, where no Secret Manager
    emulator exists; they must be chosen explicitly (``HOOKPRESS_SECRETS_BACKEND``),
    never as a fallback.
    """

    backend: SecretsBackend = "secretmanager"
    file: Path | None = None
    cache_ttl_s: float = rules.SECRET_CACHE_TTL_S.default
    # After a verification failure the cache is refreshed at most this often,
    # so a rotation is picked up at once but a flood of bad signatures cannot
    # turn into a flood of Secret Manager calls.
    min_refresh_interval_s: float = rules.SECRET_MIN_REFRESH_S.default


def _get(env: Mapping[str, str], name: str) -> str | None:
    return text(env.get(name))


def _require(env: Mapping[str, str], name: str, what: str) -> str:
    value = _get(env, name)
    if value is None:
        raise SettingsError(f"{name} is not set: it must name {what}.")
    return value


def _project(env: Mapping[str, str]) -> str:
    value = _get(env, "HOOKPRESS_PROJECT") or _get(env, "GOOGLE_CLOUD_PROJECT")
    if value is None:
        raise SettingsError(
            "HOOKPRESS_PROJECT is not set (nor GOOGLE_CLOUD_PROJECT): it must name "
            "the Google Cloud project id."
        )
    return value


def _secrets(env: Mapping[str, str]) -> SecretsConfig:
    backend = _get(env, "HOOKPRESS_SECRETS_BACKEND") or "secretmanager"
    if backend not in {"secretmanager", "env", "file"}:
        raise SettingsError(
            f"HOOKPRESS_SECRETS_BACKEND must be secretmanager, env or file, got {backend[:32]!r}."
        )
    path: Path | None = None
    if backend == "file":
        raw = _require(env, "HOOKPRESS_SECRETS_FILE", "the JSON file of local secrets")
        path = Path(raw)
    return SecretsConfig(
        backend=backend,  # type: ignore[arg-type]  # checked against the Literal above
        file=path,
        cache_ttl_s=rules.SECRET_CACHE_TTL_S.from_env(env),
        min_refresh_interval_s=rules.SECRET_MIN_REFRESH_S.from_env(env),
    )


def _sources(env: Mapping[str, str]) -> dict[str, SourceConfig]:
    raw = _require(
        env,
        "HOOKPRESS_SOURCES",
        'the configured sources as JSON, e.g. {"stripe": {"scheme": "stripe", '
        '"secret": "hookpress-source-stripe"}}',
    )
    try:
        data = json.loads(raw)
    except ValueError:
        raise SettingsError("HOOKPRESS_SOURCES is not valid JSON.") from None
    return rules.parse_sources(data, "HOOKPRESS_SOURCES", "hookpress")


class IngressSettings(msgspec.Struct, frozen=True):
    """Everything the public ingress function reads from its environment."""

    project: str
    sources: Mapping[str, SourceConfig]
    raw_bucket: str
    events_topic: str = "events"
    events_collection: str = "events"
    firestore_database: str = "(default)"
    max_body_bytes: int = rules.MAX_BODY_BYTES.default
    timestamp_tolerance_s: int = rules.TIMESTAMP_TOLERANCE_S.default
    event_ttl_days: int = rules.EVENT_TTL_DAYS.default
    backend_timeout_s: float = rules.BACKEND_TIMEOUT_S.default
    retry_after_s: int = rules.RETRY_AFTER_S.default
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)
    # The warehouse wants the payload on the first publish.
    message_payload: bool = rules.MESSAGE_PAYLOAD.default

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngressSettings:
        """Read and validate the ingress configuration; raise SettingsError if invalid."""
        return cls(
            project=_project(env),
            sources=_sources(env),
            raw_bucket=_require(env, "HOOKPRESS_RAW_BUCKET", "the bucket for raw payloads"),
            events_topic=_get(env, "HOOKPRESS_EVENTS_TOPIC") or "events",
            events_collection=_get(env, "HOOKPRESS_EVENTS_COLLECTION") or "events",
            firestore_database=_get(env, "HOOKPRESS_FIRESTORE_DATABASE") or "(default)",
            max_body_bytes=rules.MAX_BODY_BYTES.from_env(env),
            timestamp_tolerance_s=rules.TIMESTAMP_TOLERANCE_S.from_env(env),
            event_ttl_days=rules.EVENT_TTL_DAYS.from_env(env),
            backend_timeout_s=rules.BACKEND_TIMEOUT_S.from_env(env),
            retry_after_s=rules.RETRY_AFTER_S.from_env(env),
            secrets=_secrets(env),
            message_payload=rules.MESSAGE_PAYLOAD.from_env(env),
        )


PushAuth = Literal["oidc", "none"]


def _wp_base_url(env: Mapping[str, str]) -> str:
    base = _require(
        env, "HOOKPRESS_WP_BASE_URL", "the WordPress REST base, e.g. https://example.com/wp-json"
    )
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", base):
        raise SettingsError(
            "HOOKPRESS_WP_BASE_URL must be an http(s) URL without query or fragment."
        )
    return base.rstrip("/")


def _wp_user(env: Mapping[str, str]) -> str:
    return _require(env, "HOOKPRESS_WP_USER", "the WordPress ingest user")


def _wp_secret(env: Mapping[str, str]) -> str:
    return _require(
        env,
        "HOOKPRESS_WP_APP_PASSWORD_SECRET",
        "the secret holding the WordPress application password",
    )


def _push_auth(env: Mapping[str, str]) -> tuple[PushAuth, str | None, str | None]:
    """HOOKPRESS_PUSH_AUTH and, for oidc, the audience and service account it requires."""
    auth = _get(env, "HOOKPRESS_PUSH_AUTH") or "oidc"
    if auth not in {"oidc", "none"}:
        raise SettingsError(f"HOOKPRESS_PUSH_AUTH must be oidc or none, got {auth[:32]!r}.")
    audience = _get(env, "HOOKPRESS_PUSH_AUDIENCE")
    account = _get(env, "HOOKPRESS_PUSH_SERVICE_ACCOUNT")
    if auth == "none":
        return "none", audience, account
    if audience is None:
        raise SettingsError(
            "HOOKPRESS_PUSH_AUDIENCE is not set: it must name the audience of the "
            "push subscription's OIDC token (this function's URL)."
        )
    if account is None:
        raise SettingsError(
            "HOOKPRESS_PUSH_SERVICE_ACCOUNT is not set: it must name the e-mail of "
            "the push subscription's service account."
        )
    return "oidc", audience, account


class DeliverSettings(msgspec.Struct, frozen=True):
    """Everything the private deliver function reads from its environment."""

    project: str
    raw_bucket: str
    wp_base_url: str  # e.g. https://example.com/wp-json (no trailing slash)
    wp_user: str
    wp_app_password_secret: str
    push_auth: PushAuth = "oidc"
    push_audience: str | None = None
    push_service_account: str | None = None
    events_collection: str = "events"
    control_collection: str = "control"
    firestore_database: str = "(default)"
    paused: bool = rules.PAUSE_WP_DELIVERY.default
    wp_connect_timeout_s: float = rules.WP_CONNECT_TIMEOUT_S.default
    wp_read_timeout_s: float = rules.WP_READ_TIMEOUT_S.default
    breaker_threshold: int = rules.BREAKER_THRESHOLD.default
    breaker_cooldown_s: float = rules.BREAKER_COOLDOWN_S.default
    control_ttl_s: float = rules.CONTROL_TTL_S.default
    event_ttl_days: int = rules.EVENT_TTL_DAYS.default
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverSettings:
        """Read and validate the deliver configuration; raise SettingsError if invalid."""
        base = _wp_base_url(env)
        auth, audience, account = _push_auth(env)
        return cls(
            project=_project(env),
            raw_bucket=_require(env, "HOOKPRESS_RAW_BUCKET", "the bucket for raw payloads"),
            wp_base_url=base,
            wp_user=_wp_user(env),
            wp_app_password_secret=_wp_secret(env),
            push_auth=auth,
            push_audience=audience,
            push_service_account=account,
            events_collection=_get(env, "HOOKPRESS_EVENTS_COLLECTION") or "events",
            control_collection=_get(env, "HOOKPRESS_CONTROL_COLLECTION") or "control",
            firestore_database=_get(env, "HOOKPRESS_FIRESTORE_DATABASE") or "(default)",
            paused=rules.PAUSE_WP_DELIVERY_SHORT.from_env(env)
            or rules.PAUSE_WP_DELIVERY.from_env(env),
            wp_connect_timeout_s=rules.WP_CONNECT_TIMEOUT_S.from_env(env),
            wp_read_timeout_s=rules.WP_READ_TIMEOUT_S.from_env(env),
            breaker_threshold=rules.BREAKER_THRESHOLD.from_env(env),
            breaker_cooldown_s=rules.BREAKER_COOLDOWN_S.from_env(env),
            control_ttl_s=rules.CONTROL_TTL_S.from_env(env),
            event_ttl_days=rules.EVENT_TTL_DAYS.from_env(env),
            secrets=_secrets(env),
        )


class ReconcileSettings(msgspec.Struct, frozen=True):
    """The reconciler: which records count as stuck, where to re-publish them, who may call it."""

    project: str
    events_topic: str = "events"
    events_collection: str = "events"
    firestore_database: str = "(default)"
    stuck_after_s: int = rules.RECONCILE_STUCK_AFTER_S.default
    stale_after_s: int = rules.RECONCILE_STALE_AFTER_S.default
    batch: int = rules.RECONCILE_BATCH.default
    backend_timeout_s: float = rules.BACKEND_TIMEOUT_S.default
    # Cloud Scheduler's OIDC token: checked as deliver checks Pub/Sub's.
    push_auth: PushAuth = "oidc"
    push_audience: str | None = None
    push_service_account: str | None = None
    control_collection: str = "control"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReconcileSettings:
        """Read and validate the reconciler configuration; raise SettingsError if invalid."""
        auth, audience, account = _push_auth(env)
        return cls(
            push_auth=auth,
            push_audience=audience,
            push_service_account=account,
            control_collection=_get(env, "HOOKPRESS_CONTROL_COLLECTION") or "control",
            project=_project(env),
            events_topic=_get(env, "HOOKPRESS_EVENTS_TOPIC") or "events",
            events_collection=_get(env, "HOOKPRESS_EVENTS_COLLECTION") or "events",
            firestore_database=_get(env, "HOOKPRESS_FIRESTORE_DATABASE") or "(default)",
            stuck_after_s=rules.RECONCILE_STUCK_AFTER_S.from_env(env),
            stale_after_s=rules.RECONCILE_STALE_AFTER_S.from_env(env),
            batch=rules.RECONCILE_BATCH.from_env(env),
            backend_timeout_s=rules.BACKEND_TIMEOUT_S.from_env(env),
        )


class RotateSettings(msgspec.Struct, frozen=True):
    """The rotator: the WordPress it rotates the application password on, and the secret."""

    project: str
    wp_base_url: str
    wp_user: str
    wp_app_password_secret: str
    push_auth: PushAuth = "oidc"
    push_audience: str | None = None
    push_service_account: str | None = None
    wp_timeout_s: float = rules.WP_READ_TIMEOUT_S.default
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RotateSettings:
        """Read and validate the rotator configuration; raise SettingsError if invalid."""
        auth, audience, account = _push_auth(env)
        return cls(
            project=_project(env),
            wp_base_url=_wp_base_url(env),
            wp_user=_wp_user(env),
            wp_app_password_secret=_wp_secret(env),
            push_auth=auth,
            push_audience=audience,
            push_service_account=account,
            wp_timeout_s=rules.WP_READ_TIMEOUT_S.from_env(env),
            secrets=_secrets(env),
        )
