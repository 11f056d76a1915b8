"""Configuration: one typed, immutable settings object per function, read once.

Nothing here runs at import time. ``IngressSettings.from_env()`` and
``DeliverSettings.from_env()`` are called when an instance builds its runtime;
every missing or invalid value raises :class:`SettingsError` with a sentence
that names the variable, so a misconfigured deployment says what is wrong in
its first log line instead of failing three calls later.

Every variable is documented in the README's configuration reference; the
Pulumi program (``infra/``) sets them on the deployed functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from hookpress.lanes import LANES as _LANES
from hookpress.providers import PROVIDERS as _PROVIDERS
from hookpress.signatures import SCHEMES as _SIGNATURE_SCHEMES

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

#: every signature scheme by name (each is also the provider of the same name)
SCHEMES = frozenset(_SIGNATURE_SCHEMES)
#: every provider by name
PROVIDER_NAMES = frozenset(_PROVIDERS)
#: delivery lanes, each its own push subscription with its share of the WordPress cap
LANES = _LANES
SecretsBackend = Literal["secretmanager", "env", "file"]

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class SettingsError(Exception):
    """Raised when a configuration value is missing or invalid.

    The message is a full sentence naming the variable; it never contains a
    secret value.
    """


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One webhook source: its URL path segment, provider (and so scheme), secret and lane."""

    name: str
    scheme: str
    secret: str  # the Secret Manager secret id (or key in the local secrets file)
    provider: str = ""  # defaults to the scheme's own provider
    lane: str = "normal"
    tolerance_s: int | None = None  # None: the deployment-wide tolerance
    url: str | None = None  # the public URL the provider calls (URL-signing schemes: Twilio)

    def __post_init__(self) -> None:
        if not self.provider:
            object.__setattr__(self, "provider", self.scheme)


_SOURCE_KEYS = frozenset({"scheme", "provider", "secret", "lane", "tolerance", "url"})


def parse_source(name: Any, spec: Any, where: str, default_secret: str) -> SourceConfig:
    """Validate one source of a sources map; SettingsError naming ``where`` if it is wrong.

    The one validator of a source: the functions' ``HOOKPRESS_SOURCES`` and the
    Pulumi program's ``hookpress:sources`` both call it. ``spec`` is
    ``{provider | scheme, secret?, lane?, tolerance?, url?}``; a provider fixes
    the scheme, a bare scheme is the provider of the same name.
    """
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise SettingsError(
            f"{where} has an invalid source name {str(name)[:64]!r}: use "
            "lower-case letters, digits, '-' and '_' (at most 63)."
        )
    at = f"{where}[{name!r}]" if where.startswith("HOOKPRESS") else f"{where}.{name}"
    if not isinstance(spec, dict):
        raise SettingsError(f"{at} must be an object with a 'provider' (or 'scheme').")
    unknown = set(spec) - _SOURCE_KEYS
    if unknown:
        raise SettingsError(f"{at} has unknown keys: {', '.join(sorted(unknown))}.")
    provider, scheme = spec.get("provider"), spec.get("scheme")
    if provider is None and scheme is None:
        raise SettingsError(
            f"{at} needs a 'provider' (one of {', '.join(sorted(PROVIDER_NAMES))}) or a 'scheme'."
        )
    if provider is not None and provider not in PROVIDER_NAMES:
        raise SettingsError(
            f"{at}.provider must be one of {', '.join(sorted(PROVIDER_NAMES))}, "
            f"got {str(provider)[:32]!r}."
        )
    if scheme is not None and scheme not in SCHEMES:
        raise SettingsError(
            f"{at}.scheme must be one of {', '.join(sorted(SCHEMES))}, got {str(scheme)[:32]!r}."
        )
    chosen = str(provider if provider is not None else scheme)
    fixed = _PROVIDERS[chosen].scheme_name
    if scheme is not None and scheme != fixed:
        raise SettingsError(
            f"{at}: provider {chosen} signs with scheme {fixed}, not {scheme}: give one of them."
        )
    secret = spec.get("secret", default_secret)
    if not isinstance(secret, str) or not _SECRET_NAME.match(secret):
        raise SettingsError(f"{at}.secret must be a secret id (letters, digits, '-' and '_').")
    lane = spec.get("lane", "normal")
    if lane not in LANES:
        raise SettingsError(f"{at}.lane must be one of {', '.join(LANES)}, got {str(lane)[:32]!r}.")
    tolerance = spec.get("tolerance", _PROVIDERS[chosen].tolerance_s)
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 1 <= tolerance <= 3600
    ):
        raise SettingsError(f"{at}.tolerance must be whole seconds between 1 and 3600.")
    url = spec.get("url")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SettingsError(f"{at}.url must be the http(s) URL the provider calls.")
        if parts.query or parts.fragment:
            raise SettingsError(
                f"{at}.url must have no query or fragment (the request's own query is added)."
            )
    return SourceConfig(
        name=name,
        scheme=fixed,
        secret=secret,
        provider=chosen,
        lane=lane,
        tolerance_s=tolerance,
        url=url,
    )


@dataclass(frozen=True, slots=True)
class SecretsConfig:
    """Where secret values come from.

    ``secretmanager`` is the default and the only backend for the cloud.
    ``env`` and ``file`` exist for the local stack, where no Secret Manager
    emulator exists; they must be chosen explicitly (``HOOKPRESS_SECRETS_BACKEND``),
    never as a fallback.
    """

    backend: SecretsBackend = "secretmanager"
    file: Path | None = None
    cache_ttl_s: float = 300.0
    # After a verification failure the cache is refreshed at most this often,
    # so a rotation is picked up at once but a flood of bad signatures cannot
    # turn into a flood of Secret Manager calls.
    min_refresh_interval_s: float = 30.0


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _require(env: Mapping[str, str], name: str, what: str) -> str:
    value = _get(env, name)
    if value is None:
        raise SettingsError(f"{name} is not set: it must name {what}.")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw[:32]!r}.") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}.")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw[:32]!r}.") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}.")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw[:32]!r}.")


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
        cache_ttl_s=_float(env, "HOOKPRESS_SECRET_CACHE_TTL_S", 300.0, 0.0, 86_400.0),
        min_refresh_interval_s=_float(env, "HOOKPRESS_SECRET_MIN_REFRESH_S", 30.0, 0.0, 3_600.0),
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
    if not isinstance(data, dict) or not data:
        raise SettingsError("HOOKPRESS_SOURCES must be a non-empty JSON object.")
    sources: dict[str, SourceConfig] = {}
    for name, spec in data.items():
        sources[name] = parse_source(name, spec, "HOOKPRESS_SOURCES", f"hookpress-source-{name}")
    return sources


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """Everything the public ingress function reads from its environment."""

    project: str
    sources: Mapping[str, SourceConfig]
    raw_bucket: str
    events_topic: str = "events"
    events_collection: str = "events"
    firestore_database: str = "(default)"
    max_body_bytes: int = 1_048_576
    timestamp_tolerance_s: int = 300
    event_ttl_days: int = 30
    backend_timeout_s: float = 10.0
    retry_after_s: int = 30
    publish_max_latency_s: float = 0.005
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    message_payload: bool = False  # the warehouse wants the payload on the first publish

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
            max_body_bytes=_int(env, "HOOKPRESS_MAX_BODY_BYTES", 1_048_576, 1_024, 33_554_432),
            timestamp_tolerance_s=_int(env, "HOOKPRESS_TIMESTAMP_TOLERANCE_S", 300, 1, 3_600),
            event_ttl_days=_int(env, "HOOKPRESS_EVENT_TTL_DAYS", 30, 1, 3_650),
            backend_timeout_s=_float(env, "HOOKPRESS_BACKEND_TIMEOUT_S", 10.0, 0.1, 120.0),
            retry_after_s=_int(env, "HOOKPRESS_RETRY_AFTER_S", 30, 1, 3_600),
            publish_max_latency_s=_float(env, "HOOKPRESS_PUBLISH_MAX_LATENCY_S", 0.005, 0.0, 1.0),
            secrets=_secrets(env),
            message_payload=_bool(env, "HOOKPRESS_MESSAGE_PAYLOAD"),
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


@dataclass(frozen=True, slots=True)
class DeliverSettings:
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
    paused: bool = False
    wp_connect_timeout_s: float = 5.0
    wp_read_timeout_s: float = 30.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    control_ttl_s: float = 5.0
    event_ttl_days: int = 30
    secrets: SecretsConfig = field(default_factory=SecretsConfig)

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
            paused=_bool(env, "PAUSE_WP_DELIVERY") or _bool(env, "HOOKPRESS_PAUSE_WP_DELIVERY"),
            wp_connect_timeout_s=_float(env, "HOOKPRESS_WP_CONNECT_TIMEOUT_S", 5.0, 0.1, 60.0),
            wp_read_timeout_s=_float(env, "HOOKPRESS_WP_READ_TIMEOUT_S", 30.0, 0.1, 300.0),
            breaker_threshold=_int(env, "HOOKPRESS_BREAKER_THRESHOLD", 5, 1, 1_000),
            breaker_cooldown_s=_float(env, "HOOKPRESS_BREAKER_COOLDOWN_S", 30.0, 0.0, 3_600.0),
            control_ttl_s=_float(env, "HOOKPRESS_CONTROL_TTL_S", 5.0, 0.0, 300.0),
            event_ttl_days=_int(env, "HOOKPRESS_EVENT_TTL_DAYS", 30, 1, 3_650),
            secrets=_secrets(env),
        )


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """The reconciler: which records count as stuck, where to re-publish them, who may call it."""

    project: str
    events_topic: str = "events"
    events_collection: str = "events"
    firestore_database: str = "(default)"
    stuck_after_s: int = 300
    stale_after_s: int = 3_600
    batch: int = 500
    backend_timeout_s: float = 10.0
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
            stuck_after_s=_int(env, "HOOKPRESS_RECONCILE_STUCK_AFTER_S", 300, 1, 86_400),
            stale_after_s=_int(env, "HOOKPRESS_RECONCILE_STALE_AFTER_S", 3_600, 1, 604_800),
            batch=_int(env, "HOOKPRESS_RECONCILE_BATCH", 500, 1, 10_000),
            backend_timeout_s=_float(env, "HOOKPRESS_BACKEND_TIMEOUT_S", 10.0, 0.1, 120.0),
        )


@dataclass(frozen=True, slots=True)
class RotateSettings:
    """The rotator: the WordPress it rotates the application password on, and the secret."""

    project: str
    wp_base_url: str
    wp_user: str
    wp_app_password_secret: str
    push_auth: PushAuth = "oidc"
    push_audience: str | None = None
    push_service_account: str | None = None
    wp_timeout_s: float = 30.0
    secrets: SecretsConfig = field(default_factory=SecretsConfig)

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
            wp_timeout_s=_float(env, "HOOKPRESS_WP_READ_TIMEOUT_S", 30.0, 0.1, 300.0),
            secrets=_secrets(env),
        )
