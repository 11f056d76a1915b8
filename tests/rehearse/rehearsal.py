"""The deployed configuration, run on this machine: ``nox -s rehearse``.

What the Pulumi program would deploy is read from a run of the program under
mocks (``tests/infra/infra_harness.py``, with the engine's URN rules); then:

- each function's archive is built exactly as the program uploads it
  (``infra.archive``; the object name is checked against the program's), and
  unzipped into a directory of its own;
- its own ``requirements.txt``, and nothing else, is installed into a fresh
  virtualenv (``tests/infra/venvs.py``: Python 3.12 when the machine has it);
- it runs under that venv's functions-framework with exactly the environment
  variables the program sets, only the cloud endpoints swapped for local ones
  (:data:`SWAPPED`), and nothing inherited but PATH and HOME;
- push authentication is ON: every push subscription and the scheduler job go
  through an :class:`~hookpress.local.oidc.OidcFront` route that adds the
  token Pub/Sub or Cloud Scheduler would add (the subscription's or job's own
  audience and service account, signed by a local key the functions trust
  through the test-only ``HOOKPRESS_PUSH_TEST_CERTS``);
- topics, the bucket, subscriptions (filter, ack deadline, dead-letter
  policy, push path) and the scheduler call are wired from the program's
  resources, against the Pub/Sub, Firestore and GCS emulators and a real
  WordPress (behind a fault proxy, to make dead letters on purpose).

Departures, each forced by the local stand-ins and stated in the README:
the push subscriptions get no retry policy (the Pub/Sub emulator stalls a
subscription that has one after a burst of failures; see the README), secret
values come from a local file (there is no Secret Manager emulator), and the
scheduler job is called by :meth:`Rehearsal.run_job` (or a loop), not by cron.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from infra_harness import REPO, Graph, Res, run_program
from venvs import compile_source, venv_for

from hookpress.local.emulators import Emulators, ensure_bucket, ensure_topic
from hookpress.local.faultproxy import FaultProxy
from hookpress.local.framework import FunctionProcess
from hookpress.local.oidc import LocalSigner, OidcFront, Route
from hookpress.local.processes import free_port
from hookpress.local.stack import generate_secret
from hookpress.local.wordpress import WordPressServer
from hookpress.pushauth import TEST_CERTS_VARIABLE
from hookpress.signatures import SCHEMES
from infra import archive

FUNCTIONS_ROOT = REPO / "functions"
PROJECT = "hookpress-rehearse"
REGION = "europe-west1"
WP_USER = "hookpress-ingest"  # the user hookpress.local.wordpress creates
SOURCES = {scheme: {"scheme": scheme} for scheme in sorted(SCHEMES)}

#: The stack configuration rehearsed: defaults, one source per scheme (and the smoke source).
CONFIG: dict[str, str] = {
    "gcp:project": PROJECT,
    "gcp:region": REGION,
    "hookpress:sources": json.dumps(SOURCES),
    "hookpress:wpBaseUrl": "https://wp.rehearse.example/wp-json",
    "hookpress:wpUser": WP_USER,
}

#: Variables added to, or replaced in, the program's environment: cloud endpoints only.
SWAPPED = frozenset(
    {
        "PUBSUB_EMULATOR_HOST",
        "FIRESTORE_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "HOOKPRESS_SECRETS_BACKEND",
        "HOOKPRESS_SECRETS_FILE",
        "HOOKPRESS_WP_BASE_URL",
        TEST_CERTS_VARIABLE,
    }
)


@dataclass
class Deployed:
    """One function as rehearsed: the program's resource, its archive, venv and process."""

    short: str
    resource: Res
    archive_name: str
    directory: Path
    venv: Path
    program_env: dict[str, str]
    env: dict[str, str]
    process: FunctionProcess

    @property
    def service_url(self) -> str:
        """Where the program's callers reach it (its deterministic run.app URL)."""
        return self.program_env.get("HOOKPRESS_PUSH_AUDIENCE", "")


@dataclass
class Rehearsal:
    """Start with :meth:`start`, stop with :meth:`stop` (stops everything it started)."""

    workdir: Path
    graph: Graph | None = None
    emulators: Emulators | None = None
    wordpress: WordPressServer | None = None
    proxy: FaultProxy | None = None
    signer: LocalSigner = field(default_factory=LocalSigner)
    front: OidcFront | None = None
    functions: dict[str, Deployed] = field(default_factory=dict)
    source_secrets: dict[str, list[str]] = field(default_factory=dict)
    subscriptions: dict[str, Res] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _scheduler: threading.Thread | None = None
    _stop_scheduler: threading.Event = field(default_factory=threading.Event)

    # -- what the program declares ----------------------------------------------------------

    @property
    def program(self) -> Graph:
        """The program's resources and outputs (under mocks, engine rules applied)."""
        if self.graph is None:
            raise RuntimeError("the rehearsal is not started")
        return self.graph

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack outputs ``pulumi stack output --json`` would print."""
        return self.program.outputs

    @property
    def secrets_file(self) -> Path:
        return self.workdir / "secrets.json"

    @property
    def certs_file(self) -> Path:
        return self.workdir / "test-certs.json"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Rehearsal:
        """Bring everything up; on failure stop what started and re-raise."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        try:
            self._timed("program", self._run_program)
            self._timed("emulators", self._start_emulators)
            self._timed("wordpress", self._start_wordpress)
            self._timed("venvs", self._prepare_functions)
            self._timed("functions", self._start_functions)
            self._timed("wiring", self._wire)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything started, in reverse. Idempotent."""
        self.stop_scheduler()
        for deployed in self.functions.values():
            deployed.process.stop()
        for part in (self.front, self.proxy):
            if part is not None:
                part.stop()
        self.front = self.proxy = None
        if self.wordpress is not None:
            self.wordpress.stop()
            self.wordpress = None
        if self.emulators is not None:
            self.emulators.stop()
            self.emulators = None

    def _timed(self, what: str, step: Any) -> None:
        started = time.monotonic()
        step()
        self.timings[what] = round(time.monotonic() - started, 1)

    def _run_program(self) -> None:
        self.graph = run_program(CONFIG, FUNCTIONS_ROOT)

    def _start_emulators(self) -> None:
        self.emulators = Emulators(self.workdir / "emulators", PROJECT).start()

    def _start_wordpress(self) -> None:
        self.wordpress = WordPressServer(self.workdir / "wordpress")
        site = self.wordpress.start()
        self.proxy = FaultProxy(site.url).start()
        self.source_secrets = {
            name: [generate_secret(spec["scheme"])] for name, spec in SOURCES.items()
        }
        self.source_secrets["smoke"] = [generate_secret("hmac-timestamp")]
        secret_ids = self.outputs["secrets"]
        data = {secret_ids["sources"][n]: v for n, v in self.source_secrets.items()}
        data[secret_ids["wordpress"]] = [site.app_password]
        self.secrets_file.write_text(json.dumps(data, indent=2))
        self.secrets_file.chmod(0o600)
        self.signer.write_certs(self.certs_file)

    # -- functions ------------------------------------------------------------------------------

    def _prepare_functions(self) -> None:
        for function in self.program.of("cloudfunctionsv2/function:Function"):
            short = function.get("name").removeprefix("hookpress-")
            files = archive.collect(FUNCTIONS_ROOT / short, FUNCTIONS_ROOT / "hookpress")
            name = archive.object_name(short, files)
            uploaded = function.get("buildConfig.source.storageSource.object")
            if name != uploaded:
                raise AssertionError(f"{short}: built {name}, the program uploads {uploaded}")
            directory = self.workdir / "functions" / short
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            zip_path = self.workdir / "functions" / f"{short}.zip"
            zip_path.write_bytes(archive.build_zip(files))
            with zipfile.ZipFile(zip_path) as z:
                z.extractall(directory)
            compile_source(directory)  # as the buildpack does before the image is made
            program_env = dict(function.get("serviceConfig.environmentVariables"))
            self.functions[short] = Deployed(
                short=short,
                resource=function,
                archive_name=name,
                directory=directory,
                venv=venv_for(directory / "requirements.txt"),
                program_env=program_env,
                env={},
                process=FunctionProcess(
                    short,
                    function.get("buildConfig.entryPoint"),
                    {},
                    self.workdir / "logs" / f"{short}.log",
                ),
            )

    def swapped_env(self, program_env: Mapping[str, str]) -> dict[str, str]:
        """The program's environment with the cloud endpoints swapped for local ones."""
        if self.emulators is None or self.proxy is None:
            raise RuntimeError("the rehearsal is not started")
        env = dict(program_env)
        emulators = self.emulators.env
        for name in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
            env[name] = emulators[name]
        env["HOOKPRESS_SECRETS_BACKEND"] = "file"  # pragma: allowlist secret
        env["HOOKPRESS_SECRETS_FILE"] = str(self.secrets_file)
        if "HOOKPRESS_WP_BASE_URL" in env:
            env["HOOKPRESS_WP_BASE_URL"] = f"{self.proxy.url}/wp-json"
        if env.get("HOOKPRESS_PUSH_AUTH") == "oidc":
            env[TEST_CERTS_VARIABLE] = str(self.certs_file)
        return env

    def _start_functions(self) -> None:
        for deployed in self.functions.values():
            deployed.env = self.swapped_env(deployed.program_env)
            process = deployed.process
            process.env = deployed.env
            process.source = deployed.directory / "main.py"
            process.python = str(deployed.venv / "bin" / "python")
            process.cwd = deployed.directory
            process.inherit_env = False
            # A port chosen now, not when the function was prepared: a port picked
            # seconds earlier (unzip, compile, venv) can be taken meanwhile (it was,
            # once, in CI: the function never bound it and the rehearsal failed).
            process.port = free_port()
            process.start()

    def function_for(self, url: str) -> Deployed:
        """The function a caller's URL reaches (its run.app origin)."""
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        for deployed in self.functions.values():
            if deployed.service_url == origin:
                return deployed
        raise AssertionError(f"no rehearsed function answers at {origin}")

    # -- wiring ---------------------------------------------------------------------------------

    def _wire(self) -> None:
        from google.cloud import pubsub_v1

        if self.emulators is None:
            raise RuntimeError("the rehearsal is not started")
        self.front = OidcFront(self.signer).start()
        env = self.emulators.env
        with _pointed_at(env):
            ensure_bucket(PROJECT, self.outputs["rawBucket"])
            for topic in self.program.of("pubsub/topic:Topic"):
                ensure_topic(PROJECT, topic.get("name"))
            client = pubsub_v1.SubscriberClient()
            for sub in self.program.of("pubsub/subscription:Subscription"):
                client.create_subscription(request=self._subscription(sub))
                self.subscriptions[sub.get("name")] = sub
        for job in self.program.of("cloudscheduler/job:Job"):
            target = job.get("httpTarget")
            self._route(f"job-{job.get('name')}", target["uri"], target["oidcToken"])

    def _route(self, name: str, endpoint: str, token: Mapping[str, str]) -> str:
        """A front route standing for one caller; returns the local endpoint for it."""
        if self.front is None:
            raise RuntimeError("the rehearsal is not started")
        deployed = self.function_for(endpoint)
        self.front.routes[name] = Route(
            target=deployed.process.url,
            audience=token["audience"],
            email=token["serviceAccountEmail"],
        )
        path = endpoint.removeprefix(deployed.service_url)
        return self.front.endpoint(name, path)

    def _subscription(self, sub: Res) -> dict[str, Any]:
        request: dict[str, Any] = {
            "name": f"projects/{PROJECT}/subscriptions/{sub.get('name')}",
            "topic": sub.get("topic"),
            "ack_deadline_seconds": int(sub.get("ackDeadlineSeconds")),  # mocks hand back floats
        }
        if sub.get("filter"):
            request["filter"] = sub.get("filter")
        policy = sub.get("deadLetterPolicy")
        if policy:
            request["dead_letter_policy"] = {
                "dead_letter_topic": policy["deadLetterTopic"],
                "max_delivery_attempts": int(policy["maxDeliveryAttempts"]),
            }
        push = sub.get("pushConfig")
        if push:
            endpoint = self._route(sub.get("name"), push["pushEndpoint"], push["oidcToken"])
            request["push_config"] = {"push_endpoint": endpoint}
        return request

    # -- what tests and tools drive -------------------------------------------------------------

    def ingress_url(self) -> str:
        return self.functions["ingress"].process.url

    def run_job(self, name: str | None = None) -> httpx.Response:
        """Call the scheduler job as Cloud Scheduler would: its method, headers, body, token."""
        jobs = self.program.of("cloudscheduler/job:Job")
        job = next(j for j in jobs if name in (None, j.get("name")))
        target = job.get("httpTarget")
        if self.front is None:
            raise RuntimeError("the rehearsal is not started")
        deployed = self.function_for(target["uri"])
        url = self.front.endpoint(
            f"job-{job.get('name')}", target["uri"].removeprefix(deployed.service_url)
        )
        return httpx.request(
            target["httpMethod"],
            url,
            headers=target.get("headers") or {},
            content=base64.b64decode(target.get("body") or ""),
            timeout=120,
        )

    def start_scheduler(self, every_s: float) -> None:
        """Call the job every ``every_s`` seconds (a compressed schedule) until stopped."""
        self._stop_scheduler.clear()

        def loop() -> None:
            while not self._stop_scheduler.wait(every_s):
                with contextlib.suppress(httpx.HTTPError):
                    self.run_job()

        self._scheduler = threading.Thread(target=loop, daemon=True)
        self._scheduler.start()

    def stop_scheduler(self) -> None:
        self._stop_scheduler.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=10)
            self._scheduler = None

    def local_json(self, every_s: float) -> dict[str, Any]:
        """A ``.hookpress/local.json`` for the rehearsal: what the CLI reads to reach it."""
        if self.emulators is None or self.wordpress is None:
            raise RuntimeError("the rehearsal is not started")
        site = self.wordpress.site
        out = self.outputs
        emulators = self.emulators.env
        ingress = self.ingress_url()
        return {
            "project": PROJECT,
            "ingress_url": ingress,
            "sources": {
                name: {
                    "scheme": spec["scheme"],
                    "secret": spec["secret"],
                    "secrets": self.source_secrets[name],
                }
                for name, spec in out["sources"].items()
            },
            "wordpress": {"url": site.url, "rest_base": site.rest_base},
            "emulators": {
                "pubsub": emulators["PUBSUB_EMULATOR_HOST"],
                "firestore": emulators["FIRESTORE_EMULATOR_HOST"],
                "storage": emulators["STORAGE_EMULATOR_HOST"],
            },
            "bucket": out["rawBucket"],
            "topics": {"events": out["topics"]["events"], "dead": out["topics"]["eventsDead"]},
            "subscriptions": {"dead_pull": out["subscriptions"]["eventsDeadPull"]},
            "secrets_file": str(self.secrets_file),
            "smoke": {"source": out["smoke"]["source"], "reconcile_every_s": every_s},
        }


@contextlib.contextmanager
def _pointed_at(env: Mapping[str, str]) -> Any:
    """This process's Google clients pointed at the emulators for the block."""
    import os

    names = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: env[n] for n in names})
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value
