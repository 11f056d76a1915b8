"""The whole pipeline on one machine, with the code that deploys.

:class:`LocalStack` starts (or reuses) the Pub/Sub, Firestore and GCS
emulators and a real WordPress with the plugin, puts a fault proxy in front
of WordPress, runs both functions under functions-framework (gunicorn, as in
the cloud), and wires what the Pulumi program wires in the cloud: the bucket,
the ``events`` topic with its push subscription (retry policy, dead-letter
policy), the ``events-dead`` topic with a pull subscription kept 7 days and a
push subscription that marks events ``dead``.

With ``StackOptions(reconcile_every_s=…)`` it also runs the reconcile function
and calls it on that period, as Cloud Scheduler does; with
``smoke_source=True`` it configures the smoke source the Pulumi program
provisions, so ``hookpress smoke`` works against it (``nox -s dev`` turns both
on).

Differences from the cloud, each explicit: secrets come from a local file
(``HOOKPRESS_SECRETS_BACKEND=file``) because there is no Secret Manager
emulator, and push authentication is off (``HOOKPRESS_PUSH_AUTH=none``)
because the Pub/Sub emulator sends no OIDC token.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hookpress.lanes import (
    DELIVER_CONCURRENCY,
    lane_filter,
    lane_instances,
    lane_shares,
    lanes_in_use,
)
from hookpress.local.emulators import EmulatorError, Emulators, ensure_bucket, ensure_topic
from hookpress.local.faultproxy import FaultProxy
from hookpress.local.framework import FUNCTIONS, FunctionProcess
from hookpress.local.lanerouter import LaneRouter
from hookpress.local.processes import free_port
from hookpress.local.wordpress import WordPressServer, WordPressSite
from hookpress.providers import PROVIDERS
from hookpress.signatures import KeyPair

__all__ = [
    "DEFAULT_SOURCES",
    "SCHEME_SOURCES",
    "LocalStack",
    "StackOptions",
    "generate_keys",
    "generate_secret",
]

BUCKET = "hookpress-raw"
EVENTS_TOPIC = "events"
DEAD_TOPIC = "events-dead"
PUSH_SUBSCRIPTION = "events-deliver"
DEAD_PULL_SUBSCRIPTION = "events-dead-pull"
DEAD_PUSH_SUBSCRIPTION = "events-dead-deliver"


ROUTER_SUBSCRIPTION = "events-lanes-router"
ROUTED_INGRESS = Path(__file__).resolve().parent / "routed_ingress.py"


def lane_subscription(lane: str) -> str:
    """The push subscription of a lane (``normal`` keeps the historical name)."""
    return PUSH_SUBSCRIPTION if lane == "normal" else f"{PUSH_SUBSCRIPTION}-{lane}"


def lane_topic(lane: str) -> str:
    """Locally only: the topic the router publishes a lane's messages to."""
    return f"{EVENTS_TOPIC}-lane-{lane}"


WP_SECRET = "wordpress-app-password"  # noqa: S105 - a secret id, not a value
SMOKE_SOURCE = "smoke"  # as the Pulumi program names it (infra/config/)
SMOKE_SCHEME = "hmac-timestamp"


def generate_keys(provider: str, *, ed25519: bool = False) -> KeyPair:
    """A fresh key in the form the provider hands out: what the ingress holds, what signs.

    ``ed25519`` asks a Standard Webhooks provider for an asymmetric (``v1a``) pair.
    """
    scheme = PROVIDERS[provider].scheme
    if ed25519:
        return scheme.new_key_pair()  # type: ignore[attr-defined,no-any-return]
    return scheme.new_secret()


def generate_secret(provider: str) -> str:
    """A fresh shared signing secret (HMAC schemes) for a provider or scheme name."""
    return generate_keys(provider).sign


#: The six original schemes, one source each: what the benchmarks and the chaos run sign
#: for (their keys are ``sha256(source:payload id)``, which every one of these honours).
SCHEME_SOURCES: dict[str, str | dict[str, Any]] = {
    name: name
    for name in ("github", "hmac-timestamp", "shopify", "slack", "standard-webhooks", "stripe")
}

#: The local stack's default: one source per provider, named after it, and one
#: Standard Webhooks source signing asymmetrically (v1a).
DEFAULT_SOURCES: dict[str, str | dict[str, Any]] = {
    **{name: name for name in sorted(PROVIDERS)},
    "standard-webhooks-v1a": {"provider": "standard-webhooks", "key": "ed25519"},
}


def source_spec(value: str | dict[str, Any]) -> dict[str, Any]:
    """A StackOptions.sources value as ``{provider, lane?, key?}`` (a string names the provider)."""
    return {"provider": value} if isinstance(value, str) else dict(value)


@dataclass
class StackOptions:
    """Knobs of the local stack; the defaults suit a developer, tests tighten them."""

    project: str = "hookpress-local"
    # name -> provider, or {"provider": …, "lane": …, "key": "ed25519"}
    sources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    # Off by default, unlike the cloud: with a retry policy, the Pub/Sub emulator
    # (0.8.20) stops pushing a subscription for good after a burst of failed pushes
    # (a 2 s outage left 14 of 20 messages undelivered after 300 s; with no policy
    # all 20 arrived within 4 s). Without one it retries at once, which the deliver
    # function's breaker absorbs. The dead-letter policy works either way.
    retry_policy: bool = False
    retry_min_s: float = 1.0
    retry_max_s: float = 10.0
    max_attempts: int = 5
    ack_deadline_s: int = 60
    wp_read_timeout_s: float = 10.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 10.0
    threads: int = 8  # the ingress's
    # Deliver runs as it deploys: each lane (one, unless sources name others) gets its
    # share of this cap (hookpress.lanes) as instances of ``deliver_concurrency`` pushes
    # each, one gunicorn worker per instance in the lane's process group. Workers are
    # separate processes, as Cloud Run's instances are: each its own breaker, caches and
    # connections; with one push each, gunicorn's sync worker, as in the cloud.
    wp_cap: int = 8
    deliver_concurrency: int = DELIVER_CONCURRENCY
    extra_ingress_env: dict[str, str] = field(default_factory=dict)
    extra_deliver_env: dict[str, str] = field(default_factory=dict)
    # The source `hookpress smoke` signs with, as the Pulumi program provisions one.
    smoke_source: bool = False
    # Run the reconcile function and call it this often (a local Cloud Scheduler).
    reconcile_every_s: float | None = None
    # False: deliver posts straight to WordPress, as in the cloud (a run that injects no
    # faults need not pay for the proxy's hop, which runs in the caller's process).
    wp_through_proxy: bool = True


class LocalStack:
    """Start, inspect, and stop the local pipeline."""

    def __init__(
        self,
        workdir: Path,
        options: StackOptions | None = None,
        *,
        emulators: Emulators | None = None,
        wordpress: WordPressServer | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        options = options or StackOptions()
        if options.smoke_source and SMOKE_SOURCE not in options.sources:
            options = replace(options, sources={**options.sources, SMOKE_SOURCE: SMOKE_SCHEME})
        self.options = options
        self._own_emulators = emulators is None
        self._own_wordpress = wordpress is None
        self.emulators = emulators or Emulators(self.workdir / "emulators", self.options.project)
        self.wordpress = wordpress or WordPressServer(self.workdir / "wordpress")
        self.proxy: FaultProxy | None = None
        self.ingress: FunctionProcess | None = None
        self.deliver: FunctionProcess | None = None
        self.reconcile: FunctionProcess | None = None
        self._scheduler_stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.lane_delivers: dict[str, FunctionProcess] = {}  # lanes other than normal
        self.router: LaneRouter | None = None
        self.source_secrets: dict[str, list[str]] = {}  # what the ingress holds
        self.signing_secrets: dict[str, list[str]] = {}  # what a sender signs with
        self._ingress_port: int | None = None  # chosen when first needed: see public_url
        self._subscriptions: list[str] = []
        self.secrets_file = self.workdir / "secrets.json"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalStack:
        """Bring everything up; on any failure, stop what was started and re-raise."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        try:
            if self._own_emulators:
                self.emulators.start()
            os.environ.update(self.emulators.env)  # this process talks to them too
            site = self.wordpress.start()
            self.proxy = FaultProxy(site.url).start()
            self._write_secrets(site)
            self._wire_backends()
            instances = self.deliver_instances()
            self.deliver = FunctionProcess(
                "deliver",
                "deliver",
                {**self.deliver_env(), **self._instances_env(instances, "normal")},
                self.workdir / "logs" / "deliver.log",
            )
            self.deliver.start()
            for lane in instances:
                if lane == "normal":
                    continue
                process = FunctionProcess(
                    f"deliver-{lane}",
                    "deliver",
                    {**self.deliver_env(), **self._instances_env(instances, lane)},
                    self.workdir / "logs" / f"deliver-{lane}.log",
                    source=FUNCTIONS / "deliver" / "main.py",
                )
                self.lane_delivers[lane] = process
                process.start()
            self._wire_subscriptions()
            routed = len(self.lanes()) > 1
            # With lanes, the ingress applies the lane filters at publish time, as Pub/Sub
            # does (the emulator ignores them): see local/routed_ingress.py.
            self.ingress = FunctionProcess(
                "ingress",
                "ingress_routed" if routed else "ingress",
                {**self.ingress_env(), **(self._lane_env() if routed else {})},
                self.workdir / "logs" / "ingress.log",
                port=self._port_of_ingress(),
                source=ROUTED_INGRESS if routed else None,
            )
            self.ingress.start()
            if self.options.reconcile_every_s:
                self._start_reconcile(self.options.reconcile_every_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_reconcile(self, every_s: float) -> None:
        """The reconcile function, called now and then every ``every_s`` seconds."""
        self.reconcile = FunctionProcess(
            "reconcile", "reconcile", self.reconcile_env(), self.workdir / "logs" / "reconcile.log"
        )
        self.reconcile.start()
        url = f"{self.reconcile.url}/"
        self._scheduler_stop.clear()

        def tick() -> None:
            while True:
                request = urllib.request.Request(url, data=b"{}", method="POST")  # noqa: S310
                request.add_header("Content-Type", "application/json")
                with (
                    contextlib.suppress(urllib.error.URLError, OSError),
                    urllib.request.urlopen(request, timeout=60) as resp,  # noqa: S310
                ):
                    resp.read()
                if self._scheduler_stop.wait(every_s):
                    return

        self._scheduler = threading.Thread(target=tick, name="local-scheduler", daemon=True)
        self._scheduler.start()

    def stop(self) -> None:
        """Stop everything this stack started (in reverse order). Idempotent."""
        if self.router is not None:
            self.router.stop()
            self.router = None
        self._unwire_subscriptions()
        self._scheduler_stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=70)
            self._scheduler = None
        for proc in (self.ingress, self.deliver, self.reconcile, *self.lane_delivers.values()):
            if proc is not None:
                proc.stop()

        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self._own_wordpress:
            self.wordpress.stop()
        if self._own_emulators:
            self.emulators.stop()

    def _unwire_subscriptions(self) -> None:
        """Delete this stack's subscriptions (on a shared emulator, nothing else pushes to us)."""
        names, self._subscriptions = self._subscriptions, []
        if not names or self.emulators.pubsub is None or not self.emulators.pubsub.running:
            return
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1

        client = pubsub_v1.SubscriberClient()
        for name in names:
            with contextlib.suppress(gexc.GoogleAPIError):
                client.delete_subscription(request={"subscription": name}, timeout=5)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart_deliver(self, *, kill: bool = True) -> None:
        """Kill (or stop) the deliver process and start a new one on the same port."""
        if self.deliver is None:
            raise EmulatorError("the stack is not running")
        if kill:
            self.deliver.kill()
        else:
            self.deliver.stop()
        self.deliver.start()

    # -- configuration -------------------------------------------------------------

    @property
    def site(self) -> WordPressSite:
        """The WordPress site."""
        return self.wordpress.site

    def lanes(self) -> tuple[str, ...]:
        """The lanes this stack's sources use (``normal`` always)."""
        return lanes_in_use(
            str(source_spec(v).get("lane", "normal")) for v in self.options.sources.values()
        )

    def lane_shares(self) -> dict[str, int]:
        """Each lane's share of the WordPress cap: the pushes its deliver serves at once."""
        o = self.options
        return dict(lane_shares(o.wp_cap, o.deliver_concurrency, self.lanes()))

    def deliver_instances(self) -> dict[str, int]:
        """Each lane's deliver instances (the Pulumi program's max instances per lane)."""
        o = self.options
        return dict(lane_instances(o.wp_cap, o.deliver_concurrency, self.lanes()))

    def _lane_env(self) -> dict[str, str]:
        lanes = self.lanes()
        return {
            "HOOKPRESS_LOCAL_LANE_TOPICS": json.dumps({lane: lane_topic(lane) for lane in lanes}),
            "HOOKPRESS_LOCAL_LANE_FILTERS": json.dumps(
                {lane: lane_filter(lane, lanes) or "" for lane in lanes}
            ),
        }

    def _instances_env(self, instances: dict[str, int], lane: str) -> dict[str, str]:
        """A lane's instances as functions-framework's gunicorn workers, each with the
        threads one deployed instance has (infra/env.py gives it WORKERS 1)."""
        return {"WORKERS": str(instances[lane]), "THREADS": str(self.options.deliver_concurrency)}

    def provider_of(self, name: str) -> str:
        """The provider of one of this stack's sources."""
        return str(source_spec(self.options.sources[name])["provider"])

    def public_url(self, name: str) -> str:
        """Where a provider posts this source's webhooks (what a URL-signing provider signs)."""
        return f"http://127.0.0.1:{self._port_of_ingress()}/{name}"

    def _port_of_ingress(self) -> int:
        """The ingress's port, chosen on first use: its own settings name its URL (a
        URL-signing source signs it), so it is fixed before the process starts, but no
        earlier than needed. A port free at the stack's construction could be taken by
        the time the ingress binds it: the JVM emulators, WordPress and deliver all
        start in between, and the JVMs bind ephemeral ports of their own."""
        if self._ingress_port is None:
            self._ingress_port = free_port()
        return self._ingress_port

    def _write_secrets(self, site: WordPressSite) -> None:
        pairs = {
            name: generate_keys(
                str(source_spec(value)["provider"]),
                ed25519=source_spec(value).get("key") == "ed25519",
            )
            for name, value in self.options.sources.items()
        }
        self.source_secrets = {name: [pair.verify] for name, pair in pairs.items()}
        self.signing_secrets = {name: [pair.sign] for name, pair in pairs.items()}
        data: dict[str, list[str]] = {
            f"hookpress-source-{name}": values for name, values in self.source_secrets.items()
        }
        data[WP_SECRET] = [site.app_password]
        self.secrets_file.write_text(json.dumps(data, indent=2))
        self.secrets_file.chmod(0o600)

    def _common_env(self) -> dict[str, str]:
        return {
            **self.emulators.env,
            "HOOKPRESS_PROJECT": self.options.project,
            "HOOKPRESS_RAW_BUCKET": BUCKET,
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(self.secrets_file),
            "HOOKPRESS_SECRET_MIN_REFRESH_S": "1",
            "THREADS": str(self.options.threads),
            "PYTHONUNBUFFERED": "1",
        }

    def ingress_env(self) -> dict[str, str]:
        """The ingress function's environment."""
        sources = {name: self._source_config(name) for name in self.options.sources}
        return {
            **self._common_env(),
            "HOOKPRESS_SOURCES": json.dumps(sources),
            "HOOKPRESS_EVENTS_TOPIC": EVENTS_TOPIC,
            **self.options.extra_ingress_env,
        }

    def _source_config(self, name: str) -> dict[str, Any]:
        spec = source_spec(self.options.sources[name])
        config: dict[str, Any] = {
            "provider": spec["provider"],
            "secret": f"hookpress-source-{name}",
            "lane": spec.get("lane", "normal"),
        }
        if PROVIDERS[spec["provider"]].scheme_name == "twilio":
            config["url"] = self.public_url(name)
        return config

    def deliver_env(self) -> dict[str, str]:
        """The deliver function's environment (WordPress reached through the fault proxy)."""
        if self.proxy is None:
            raise EmulatorError("the fault proxy is not running")
        wordpress = self.proxy.url if self.options.wp_through_proxy else self.site.url
        return {
            **self._common_env(),
            "HOOKPRESS_WP_BASE_URL": f"{wordpress}/wp-json",
            "HOOKPRESS_WP_USER": self.site.ingest_user,
            "HOOKPRESS_WP_APP_PASSWORD_SECRET": WP_SECRET,
            "HOOKPRESS_PUSH_AUTH": "none",
            "HOOKPRESS_WP_READ_TIMEOUT_S": str(self.options.wp_read_timeout_s),
            "HOOKPRESS_BREAKER_THRESHOLD": str(self.options.breaker_threshold),
            "HOOKPRESS_BREAKER_COOLDOWN_S": str(self.options.breaker_cooldown_s),
            **self.options.extra_deliver_env,
        }

    def reconcile_env(self) -> dict[str, str]:
        """The reconcile function's environment (called by the local scheduler, no token)."""
        return {
            **self._common_env(),
            "HOOKPRESS_EVENTS_TOPIC": EVENTS_TOPIC,
            "HOOKPRESS_PUSH_AUTH": "none",
        }

    def _wire_backends(self) -> None:
        project = self.options.project
        ensure_bucket(project, BUCKET)
        ensure_topic(project, EVENTS_TOPIC)
        ensure_topic(project, DEAD_TOPIC)
        if len(self.lanes()) > 1:
            for lane in self.lanes():
                ensure_topic(project, lane_topic(lane))

    def _wire_subscriptions(self) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1
        from google.protobuf import duration_pb2

        if self.deliver is None:
            raise EmulatorError("the deliver function is not running")
        project, opts = self.options.project, self.options
        client = pubsub_v1.SubscriberClient()
        topic = f"projects/{project}/topics/{EVENTS_TOPIC}"
        dead = f"projects/{project}/topics/{DEAD_TOPIC}"

        def seconds(value: float) -> duration_pb2.Duration:
            return duration_pb2.Duration(seconds=int(value), nanos=int((value % 1) * 1e9))

        retry = (
            {
                "retry_policy": {
                    "minimum_backoff": seconds(opts.retry_min_s),
                    "maximum_backoff": seconds(opts.retry_max_s),
                }
            }
            if opts.retry_policy
            else {}
        )
        lanes = self.lanes()
        subscriptions: list[dict[str, Any]] = []
        routed = len(lanes) > 1
        if routed:
            # The emulator ignores filters: a router applies them (lanerouter.py), publishing
            # each lane's messages to the lane's own topic, which its push subscription reads.
            self.router = LaneRouter(
                project,
                {lane: f"projects/{project}/topics/{lane_topic(lane)}" for lane in lanes},
                {lane: lane_filter(lane, lanes) or "" for lane in lanes},
            ).start()
            subscriptions.append(
                {
                    "name": client.subscription_path(project, ROUTER_SUBSCRIPTION),
                    "topic": topic,
                    "push_config": {"push_endpoint": self.router.url},
                    "ack_deadline_seconds": 60,
                }
            )
        for lane in lanes:
            process = self.deliver if lane == "normal" else self.lane_delivers[lane]
            subscriptions.append(
                {
                    "name": client.subscription_path(project, lane_subscription(lane)),
                    "topic": f"projects/{project}/topics/{lane_topic(lane)}" if routed else topic,
                    "push_config": {"push_endpoint": f"{process.url}/"},
                    "ack_deadline_seconds": opts.ack_deadline_s,
                    **retry,
                    "dead_letter_policy": {
                        "dead_letter_topic": dead,
                        "max_delivery_attempts": opts.max_attempts,
                    },
                }
            )
        subscriptions += [
            {
                "name": client.subscription_path(project, DEAD_PULL_SUBSCRIPTION),
                "topic": dead,
                "message_retention_duration": seconds(7 * 24 * 3600),
                "ack_deadline_seconds": 60,
            },
            {
                "name": client.subscription_path(project, DEAD_PUSH_SUBSCRIPTION),
                "topic": dead,
                "push_config": {"push_endpoint": f"{self.deliver.url}/dead"},
                "ack_deadline_seconds": 30,
            },
        ]
        for request in subscriptions:
            # This stack owns these names: a subscription left by an earlier stack on the
            # same emulator would push to that stack's (dead) deliver function.
            with contextlib.suppress(gexc.NotFound):
                client.delete_subscription(request={"subscription": request["name"]})
            client.create_subscription(request=request)
        self._subscriptions = [r["name"] for r in subscriptions]

    # -- what tools read -----------------------------------------------------------

    def local_json(self) -> dict[str, Any]:
        """The content of ``.hookpress/local.json`` (DESIGN.md "Local stack")."""
        if self.ingress is None or self.deliver is None or self.proxy is None:
            raise EmulatorError("the stack is not running")
        site = self.site
        env = self.emulators.env
        return {
            "project": self.options.project,
            "ingress_url": self.ingress.url,
            "deliver_url": self.deliver.url,
            "sources": {
                name: {
                    **self._source_config(name),
                    "scheme": PROVIDERS[self.provider_of(name)].scheme_name,
                    "secrets": self.source_secrets[name],
                    **(
                        {"signing_secrets": self.signing_secrets[name]}
                        if self.signing_secrets[name] != self.source_secrets[name]
                        else {}
                    ),
                }
                for name in self.options.sources
            },
            "wordpress": {
                "url": site.url,
                "rest_base": site.rest_base,
                "admin_user": site.admin_user,
                "admin_password": site.admin_password,
                # WordPress's REST API takes Basic auth only with an application password.
                "admin_app_password": site.admin_app_password,
                "ingest_user": site.ingest_user,
                "app_password": site.app_password,
                # Where tools read the current one (rotation replaces it there).
                "app_password_secret": WP_SECRET,
            },
            "emulators": {
                "pubsub": env["PUBSUB_EMULATOR_HOST"],
                "firestore": env["FIRESTORE_EMULATOR_HOST"],
                "storage": env["STORAGE_EMULATOR_HOST"],
            },
            "bucket": BUCKET,
            "topics": {"events": EVENTS_TOPIC, "dead": DEAD_TOPIC},
            "subscriptions": {
                "push": PUSH_SUBSCRIPTION,
                "dead_pull": DEAD_PULL_SUBSCRIPTION,
                "dead_push": DEAD_PUSH_SUBSCRIPTION,
            },
            "fault_proxy": self.proxy.url,
            "secrets_file": str(self.secrets_file),
            "smoke": {
                "source": SMOKE_SOURCE if self.options.smoke_source else None,
                "reconcile_every_s": self.options.reconcile_every_s,
            },
            "logs": str(self.workdir / "logs"),
        }
