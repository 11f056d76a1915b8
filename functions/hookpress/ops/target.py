"""Which stack to talk to, and the adapters that reach it.

A :class:`Target` is everything an operation needs to know about one stack:
the project, the bucket, topic and subscription names, the Firestore
collections, the sources (scheme, secret id, ingress URL) and where secret
values live. :func:`resolve` picks it, first match wins:

1. ``--local FILE`` or ``HOOKPRESS_LOCAL``: the local stack that wrote FILE.
2. ``--stack-outputs FILE``, ``--project``, ``HOOKPRESS_STACK_OUTPUTS`` or
   ``HOOKPRESS_PROJECT``: a deployed stack. FILE is ``pulumi stack output
   --json > FILE``; flags beat environment variables, which beat the file.
3. ``.hookpress/local.json`` in the working directory or one of its parents:
   the local stack ``nox -s dev`` is running.

Nothing here performs I/O at import time; the adapters build their clients on
first use.

Exceptions
----------
TargetError
    No stack could be chosen, or what describes it is missing, unreadable or
    incomplete. The message is a sentence saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from hookpress import config_rules as rules
from hookpress.config_rules import Knob, SettingsError
from hookpress.providers import PROVIDERS
from hookpress.settings import SecretsConfig

if TYPE_CHECKING:
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.backends.pubsub import EventPublisher
    from hookpress.backends.secrets import SecretValues, SecretWriter
    from hookpress.ops.deadletters import PubSubDeadLetters

__all__ = [
    "EMULATOR_VARIABLES",
    "LOCAL_FILE",
    "Overrides",
    "Source",
    "Target",
    "TargetError",
    "WordPress",
    "cron_period_s",
    "find_local_file",
    "load_cloud",
    "load_local",
    "resolve",
]

#: where ``nox -s dev`` writes the local stack's description, relative to the repository
LOCAL_FILE = Path(".hookpress") / "local.json"

#: what points the Google client libraries at the emulators
EMULATOR_VARIABLES = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")

_DEFAULT_SECRET = "hookpress-source-{name}"  # noqa: S105 - a secret id pattern, not a value


_V = TypeVar("_V", int, float, bool)


class TargetError(Exception):
    """No usable stack description; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Source:
    """One configured webhook source, as an operator tool sees it."""

    name: str
    scheme: str | None  # None when a deployed stack does not say (pass --scheme)
    secret: str  # the secret id (Secret Manager, or the key in the local secrets file)
    url: str | None  # where providers POST its webhooks
    inline_secrets: tuple[str, ...] = ()  # values written into local.json, newest first
    provider: str | None = None  # None: the scheme's own provider
    signing_secrets: tuple[str, ...] = ()  # asymmetric keys: the private half (local only)
    public_url: str | None = None  # what a URL-signing provider (Twilio) signs


@dataclass(frozen=True, slots=True)
class WordPress:
    """How an operator tool reaches the plugin as the ingest user (replay's batch route)."""

    base_url: str  # the REST base, e.g. https://example.com/wp-json
    user: str
    password_secret: str  # the secret id of the ingest user's application password


@dataclass(frozen=True, slots=True)
class Overrides:
    """Values given on the command line (or by a script); None means not given."""

    project: str | None = None
    bucket: str | None = None
    database: str | None = None
    ingress_url: str | None = None
    events_topic: str | None = None
    dead_subscription: str | None = None


@dataclass(frozen=True)
class Target:
    """One stack: where its parts are and how to reach them."""

    kind: Literal["local", "cloud"]
    project: str
    origin: str  # what described it, for messages ("local stack (FILE)", ...)
    sources: Mapping[str, Source] = field(default_factory=dict)
    bucket: str | None = None
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    ingress_url: str | None = None
    events_topic: str = "events"
    dead_subscription: str = "events-dead-pull"
    events_collection: str = "events"
    control_collection: str = "control"
    firestore_database: str = "(default)"
    emulators: Mapping[str, str] = field(default_factory=dict)
    local_file: Path | None = None
    timeout_s: float = 30.0
    pull_wait_s: float = 5.0  # how long an empty pull of the dead-letter subscription waits
    event_ttl_days: int = 30
    control_ttl_s: float = 5.0
    #: the source `hookpress smoke` signs with (None: the stack provisions none)
    smoke_source: str | None = None
    #: how often the reconcile job runs, in seconds (None: unknown)
    reconcile_every_s: float | None = None
    #: the plugin, as the deliver function reaches it (None: not known to this tool)
    wordpress: WordPress | None = None
    #: a Secret Manager client to use instead of building one (scripts, tests)
    secret_client: Any = field(default=None, compare=False, repr=False)

    # -- facts --------------------------------------------------------------------

    def describe(self) -> str:
        """One line for the operator: which stack this is."""
        return f"{self.origin}, project {self.project}"

    def source(self, name: str) -> Source:
        """The named source, or TargetError listing the known ones."""
        found = self.sources.get(name)
        if found is not None:
            return found
        known = ", ".join(sorted(self.sources)) or "none are configured"
        raise TargetError(f"unknown source {name!r} on the {self.describe()}: known are {known}.")

    def require_bucket(self) -> str:
        """The raw-payload bucket, or TargetError saying how to name it."""
        if not self.bucket:
            raise TargetError(
                "the raw-payload bucket is not known: pass --bucket, set HOOKPRESS_RAW_BUCKET, "
                "or give --stack-outputs (its rawBucket output)."
            )
        return self.bucket

    # -- the process environment ----------------------------------------------------

    def activate(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Point the Google client libraries at this stack.

        A local target sets the emulator variables; a deployed one removes
        them, so a shell left pointing at the emulators cannot make an
        operation on production silently land on a laptop.
        """
        env = os.environ if environ is None else environ
        for name in EMULATOR_VARIABLES:
            env.pop(name, None)
        env.update(self.emulators)

    # -- adapters (clients are built on first use) -----------------------------------

    def records(self) -> EventRecords:
        """The events collection (and, by name, the control collection)."""
        from hookpress.backends.firestore import EventRecords

        return EventRecords(
            self.project, self.firestore_database, self.events_collection, self.timeout_s
        )

    def raw(self) -> RawStore:
        """The raw-payload bucket."""
        from hookpress.backends.gcs import RawStore

        return RawStore(self.project, self.require_bucket(), self.timeout_s)

    def dead_letters(self) -> PubSubDeadLetters:
        """The dead-letter pull subscription."""
        from hookpress.ops.deadletters import PubSubDeadLetters

        return PubSubDeadLetters(
            self.project, self.dead_subscription, self.timeout_s, pull_wait_s=self.pull_wait_s
        )

    def publisher(self) -> EventPublisher:
        """Publishes event keys to the events topic."""
        from hookpress.backends.pubsub import EventPublisher

        return EventPublisher(self.project, self.events_topic, self.timeout_s)

    def secret_values(self) -> SecretValues:
        """Reads the enabled values of a secret."""
        from hookpress.backends.secrets import SecretManagerValues, build_secret_values

        if self.secrets.backend == "secretmanager":
            return SecretManagerValues(self.project, self.timeout_s, client=self.secret_client)
        return build_secret_values(self.secrets, self.project, {}, self.timeout_s)

    def secret_writer(self) -> SecretWriter:
        """Adds and disables secret versions."""
        from hookpress.backends.secrets import SecretManagerWriter, build_secret_writer

        if self.secrets.backend == "secretmanager":
            return SecretManagerWriter(self.project, self.timeout_s, client=self.secret_client)
        return build_secret_writer(self.secrets, self.project, self.timeout_s)

    def with_overrides(self, overrides: Overrides) -> Target:
        """This target with the values given on the command line."""
        changes: dict[str, Any] = {}
        if overrides.project:
            changes["project"] = overrides.project
        if overrides.bucket:
            changes["bucket"] = overrides.bucket
        if overrides.database:
            changes["firestore_database"] = overrides.database
        if overrides.events_topic:
            changes["events_topic"] = overrides.events_topic
        if overrides.dead_subscription:
            changes["dead_subscription"] = overrides.dead_subscription
        if overrides.ingress_url:
            base = overrides.ingress_url.rstrip("/")
            changes["ingress_url"] = base
            changes["sources"] = {n: replace(s, url=f"{base}/{n}") for n, s in self.sources.items()}
        return replace(self, **changes) if changes else self


# -- reading descriptions --------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(f"{path} does not exist ({what}).") from None
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path} is not readable JSON ({what}): {exc}.") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path} must hold a JSON object ({what}).")
    return data


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_local(path: Path, env: Mapping[str, str] | None = None) -> Target:
    """The local stack described by ``path`` (``.hookpress/local.json``)."""
    env = os.environ if env is None else env
    data = _read_json(path, "the local stack's description, written by `nox -s dev`")
    pid = data.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and not _pid_alive(pid):
        raise TargetError(
            f"the local stack that wrote {path} (pid {pid}) is not running any more: "
            "start it again with `nox -s dev`."
        )
    project = _text(data.get("project"))
    if project is None:
        raise TargetError(f"{path} names no project: is it a hookpress local.json?")
    ingress = _text(data.get("ingress_url"))
    ingress = ingress.rstrip("/") if ingress else None
    emulators = _map(data.get("emulators"))
    variables = {
        "PUBSUB_EMULATOR_HOST": _text(emulators.get("pubsub")),
        "FIRESTORE_EMULATOR_HOST": _text(emulators.get("firestore")),
        "STORAGE_EMULATOR_HOST": _text(emulators.get("storage")),
    }
    missing = [k for k, v in variables.items() if v is None]
    if missing:
        raise TargetError(f"{path} lacks the emulator addresses ({', '.join(missing)}).")
    sources: dict[str, Source] = {}
    for name, spec in _map(data.get("sources")).items():
        spec = _map(spec)
        values = spec.get("secrets", [])
        signing = spec.get("signing_secrets", [])
        sources[name] = Source(
            name=name,
            scheme=_text(spec.get("scheme")),
            secret=_text(spec.get("secret")) or _DEFAULT_SECRET.format(name=name),
            url=f"{ingress}/{name}" if ingress else None,
            inline_secrets=tuple(v for v in values if isinstance(v, str) and v),
            provider=_text(spec.get("provider")),
            signing_secrets=tuple(v for v in signing if isinstance(v, str) and v)
            if isinstance(signing, list)
            else (),
            public_url=_text(spec.get("url")),
        )
    secrets_file = _text(data.get("secrets_file"))
    secrets = (
        SecretsConfig(backend="file", file=Path(secrets_file))
        if secrets_file
        else SecretsConfig(backend="env")
    )
    topics = _map(data.get("topics"))
    subscriptions = _map(data.get("subscriptions"))
    smoke = _map(data.get("smoke"))
    every = smoke.get("reconcile_every_s")
    wp = _map(data.get("wordpress"))
    wp_base, wp_user = _text(wp.get("rest_base")), _text(wp.get("ingest_user"))
    wp_secret = _text(wp.get("app_password_secret"))
    return Target(
        kind="local",
        smoke_source=_text(smoke.get("source")),
        reconcile_every_s=float(every) if isinstance(every, int | float) and every > 0 else None,
        project=project,
        origin=f"local stack ({path})",
        sources=sources,
        bucket=_text(data.get("bucket")),
        secrets=secrets,
        ingress_url=ingress,
        events_topic=_text(topics.get("events")) or "events",
        dead_subscription=_text(subscriptions.get("dead_pull")) or "events-dead-pull",
        emulators={k: v for k, v in variables.items() if v is not None},
        local_file=path,
        timeout_s=10.0,
        pull_wait_s=2.0,  # the emulator answers at once when messages wait
        event_ttl_days=_setting(env, rules.EVENT_TTL_DAYS),
        control_ttl_s=_setting(env, rules.CONTROL_TTL_S),
        wordpress=_wordpress(wp_base, wp_user, wp_secret),
    )


def _wordpress(base: str | None, user: str | None, secret: str | None) -> WordPress | None:
    return WordPress(base.rstrip("/"), user, secret) if base and user and secret else None


def _setting(env: Mapping[str, str], knob: Knob[_V]) -> _V:
    """A variable the functions read too, with their default and bounds (config_rules owns them)."""
    try:
        return knob.from_env(env)
    except SettingsError as exc:
        raise TargetError(str(exc)) from None


def _project_from_accounts(outputs: Mapping[str, Any]) -> str | None:
    """The project of the stack's service accounts (``name@PROJECT.iam.gserviceaccount.com``)."""
    for email in _map(outputs.get("serviceAccounts")).values():
        if isinstance(email, str) and email.endswith(".iam.gserviceaccount.com") and "@" in email:
            return email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com")
    return None


def _env_sources(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    raw = env.get("HOOKPRESS_SOURCES", "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise TargetError("HOOKPRESS_SOURCES is not valid JSON.") from None
    if not isinstance(data, dict):
        raise TargetError('HOOKPRESS_SOURCES must be a JSON object {"name": {"scheme": …}}.')
    return {str(k): _map(v) for k, v in data.items()}


def load_cloud(
    *,
    outputs_file: Path | None,
    env: Mapping[str, str],
    overrides: Overrides | None = None,
) -> Target:
    """A deployed stack from ``pulumi stack output --json``, the environment and flags."""
    overrides = overrides or Overrides()
    outputs: dict[str, Any] = {}
    origin = "deployed stack"
    if outputs_file is not None:
        outputs = _read_json(outputs_file, "from `pulumi stack output --json > FILE`")
        origin = f"deployed stack ({outputs_file})"

    def pick(flag: str | None, variable: str, output: Any, default: str | None) -> str | None:
        return flag or _text(env.get(variable)) or _text(output) or default

    project = (
        overrides.project
        or _text(env.get("HOOKPRESS_PROJECT"))
        or _text(outputs.get("project"))
        or _project_from_accounts(outputs)
        or _text(env.get("GOOGLE_CLOUD_PROJECT"))
    )
    if project is None:
        raise TargetError(
            "no Google Cloud project: pass --project or set HOOKPRESS_PROJECT "
            "(the stack outputs name none)."
        )
    ingress = pick(overrides.ingress_url, "HOOKPRESS_INGRESS_URL", outputs.get("ingressUrl"), None)
    ingress = ingress.rstrip("/") if ingress else None
    urls = _map(outputs.get("ingressUrls"))
    secret_ids = _map(_map(outputs.get("secrets")).get("sources"))
    declared = _env_sources(env)
    described = _map(outputs.get("sources"))  # name -> {scheme, secret}
    sources: dict[str, Source] = {}
    for name in sorted(set(urls) | set(secret_ids) | set(declared) | set(described)):
        spec = {**_map(described.get(name)), **declared.get(name, {})}
        provider = _text(spec.get("provider")) or _text(spec.get("scheme"))
        provider = provider or (name if name in PROVIDERS else None)
        scheme = PROVIDERS[provider].scheme_name if provider and provider in PROVIDERS else None
        url = _text(urls.get(name)) if not overrides.ingress_url else None
        sources[name] = Source(
            name=name,
            scheme=scheme,
            provider=provider,
            public_url=_text(spec.get("url")) or url,
            secret=_text(spec.get("secret"))
            or _text(secret_ids.get(name))
            or _DEFAULT_SECRET.format(name=name),
            url=url or (f"{ingress}/{name}" if ingress else None),
        )
    topics = _map(outputs.get("topics"))
    subscriptions = _map(outputs.get("subscriptions"))
    smoke = _map(outputs.get("smoke"))
    schedule = _text(smoke.get("reconcileSchedule"))
    # The deliver function's own variables: set them to replay straight into WordPress.
    wp_base = _text(env.get("HOOKPRESS_WP_BASE_URL"))
    wp_user = _text(env.get("HOOKPRESS_WP_USER"))
    wp_secret = _text(env.get("HOOKPRESS_WP_APP_PASSWORD_SECRET"))
    return Target(
        kind="cloud",
        smoke_source=_text(smoke.get("source")),
        reconcile_every_s=cron_period_s(schedule) if schedule else None,
        project=project,
        origin=origin,
        sources=sources,
        bucket=pick(overrides.bucket, "HOOKPRESS_RAW_BUCKET", outputs.get("rawBucket"), None),
        secrets=SecretsConfig(backend="secretmanager"),
        ingress_url=ingress,
        events_topic=pick(
            overrides.events_topic, "HOOKPRESS_EVENTS_TOPIC", topics.get("events"), "events"
        )
        or "events",
        dead_subscription=pick(
            overrides.dead_subscription,
            "HOOKPRESS_DEAD_SUBSCRIPTION",
            subscriptions.get("eventsDeadPull"),
            "events-dead-pull",
        )
        or "events-dead-pull",
        events_collection=_text(env.get("HOOKPRESS_EVENTS_COLLECTION")) or "events",
        control_collection=_text(env.get("HOOKPRESS_CONTROL_COLLECTION")) or "control",
        firestore_database=pick(
            overrides.database,
            "HOOKPRESS_FIRESTORE_DATABASE",
            outputs.get("firestoreDatabase"),
            "(default)",
        )
        or "(default)",
        event_ttl_days=_setting(env, rules.EVENT_TTL_DAYS),
        control_ttl_s=_setting(env, rules.CONTROL_TTL_S),
        wordpress=_wordpress(wp_base, wp_user, wp_secret),
    )


def cron_period_s(schedule: str) -> float | None:
    """The longest gap between runs of a five-field cron schedule, for the common forms.

    ``*/N * * * *`` is N minutes, ``M * * * *`` an hour, ``M H * * *`` a day; other
    forms give None (unknown).
    """
    fields = schedule.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        return None
    minute, hour = fields[0], fields[1]
    if hour == "*" and minute == "*":
        return 60.0
    if hour == "*" and minute.startswith("*/") and minute[2:].isdigit() and int(minute[2:]) > 0:
        return 60.0 * int(minute[2:])
    if hour == "*" and minute.isdigit():
        return 3600.0
    if minute.isdigit() and hour.isdigit():
        return 86400.0
    return None


def find_local_file(cwd: Path) -> Path | None:
    """``.hookpress/local.json`` in ``cwd`` or the nearest parent that has one."""
    for directory in (cwd, *cwd.parents):
        candidate = directory / LOCAL_FILE
        with contextlib.suppress(OSError):
            if candidate.is_file():
                return candidate
    return None


def _path(value: str | None) -> Path | None:
    return Path(value) if value and value.strip() else None


def resolve(
    *,
    local: Path | None = None,
    stack_outputs: Path | None = None,
    overrides: Overrides | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """Choose the stack (see the module docstring for the order)."""
    env = os.environ if env is None else env
    overrides = overrides or Overrides()
    local = local or _path(env.get("HOOKPRESS_LOCAL"))
    outputs = stack_outputs or _path(env.get("HOOKPRESS_STACK_OUTPUTS"))
    if local is not None:
        if stack_outputs is not None or overrides.project:
            raise TargetError(
                "--local names the local stack, --stack-outputs/--project a deployed one: "
                "give one of them."
            )
        return load_local(local, env).with_overrides(overrides)
    if outputs is not None or overrides.project or _text(env.get("HOOKPRESS_PROJECT")):
        return load_cloud(outputs_file=outputs, env=env, overrides=overrides)
    found = find_local_file(cwd or Path.cwd())
    if found is not None:
        return load_local(found, env).with_overrides(overrides)
    raise TargetError(
        "no stack to talk to: there is no .hookpress/local.json here or in a parent directory "
        "(start the local stack with `nox -s dev`), and no deployed stack is named "
        "(--stack-outputs FILE from `pulumi stack output --json`, or --project / "
        "HOOKPRESS_PROJECT)."
    )
