"""The seed's design as an anchor: ``../shared/anchors/seed-django``, started as its README says.

That folder holds the ingress the project grew from (a Django view under
gunicorn: verify an HMAC+timestamp signature, parse, a unique insert into
PostgreSQL, a Celery ``.delay`` onto Redis, 202). Nothing of it is copied
here: the benchmark runs it where it lies, with its own ``serve.sh``, from a
virtualenv of its ``requirements.txt`` kept under ``.hookpress/`` (never
committed), and measures the CPU of its gunicorn process tree exactly as it
measures the ingress's.

It needs Debian's ``postgresql`` and ``redis-server`` and root (``serve.sh``
runs PostgreSQL as the ``postgres`` user); a missing piece is an error that
says what to install, never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import REPO
from bench._load import ProcessTree
from hookpress.local.emulators import free_port

__all__ = ["SEED", "SEED_SECRET", "SEED_SOURCE", "SeedAnchor", "SeedError"]

#: where the anchor lives: beside the repository, as the issues name it
SEED = Path(os.environ.get("HOOKPRESS_SEED_ANCHOR", REPO.parent / "shared/anchors/seed-django"))
# serve.sh's default PROVIDER_WEBHOOK_SECRET: a benchmark fixture, not a credential
SEED_SECRET = "anchor-secret"  # noqa: S105  # pragma: allowlist secret
SEED_SOURCE = "webhook"  # its one route, POST /webhook, scheme hmac-timestamp
_VENV = REPO / ".hookpress" / "seed-venv"
_READY = re.compile(r"ready http://127\.0\.0\.1:(\d+)/webhook \(gunicorn pid (\d+)\)")


class SeedError(RuntimeError):
    """The anchor cannot run here; the message says what is missing."""


def _python(path: Path) -> Path:
    """A virtualenv with the anchor's requirements (created once, reused)."""
    python = _VENV / "bin" / "python"
    stamp = _VENV / "requirements.txt"
    wanted = (path / "requirements.txt").read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    interpreter = shutil.which("python3.11") or sys.executable
    subprocess.run([interpreter, "-m", "venv", "--clear", str(_VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603 - fixed argv
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(path / "requirements.txt")],
        check=True,
    )  # fmt: skip
    stamp.write_text(wanted)
    return python


def _check(path: Path) -> None:
    if not (path / "serve.sh").exists():
        raise SeedError(
            f"the seed anchor is not at {path}: it is expected at ../shared/anchors/seed-django "
            "beside the repository (or set HOOKPRESS_SEED_ANCHOR)."
        )
    missing = [
        tool
        for tool, found in (
            ("postgresql", any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
            ("redis-server", shutil.which("redis-server") is not None),
        )
        if not found
    ]
    if missing:
        raise SeedError(f"the seed anchor needs: apt-get install -y {' '.join(missing)}")
    if os.geteuid() != 0:
        raise SeedError("the seed anchor's serve.sh runs PostgreSQL via su postgres: run as root.")


@dataclass
class SeedAnchor(ProcessTree):
    """``serve.sh PORT WORKERS`` in its own process group; the measured tree is its gunicorn."""

    path: Path = SEED
    workers: int = 4  # serve.sh's default: the design as shipped
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[str] | None = None
    _gunicorn: int | None = None

    @property
    def root_pid(self) -> int:
        """The gunicorn master (not serve.sh, PostgreSQL or Redis: only the front is measured)."""
        if self._gunicorn is None:
            raise SeedError("the seed anchor is not running")
        return self._gunicorn

    def start(self) -> SeedAnchor:
        """Start it and wait for its ready line."""
        _check(self.path)
        python = _python(self.path)
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(self.path / "serve.sh"), str(self.port), str(self.workers)],
            env={**os.environ, "PY": str(python), "PROVIDER_WEBHOOK_SECRET": SEED_SECRET},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            process_group=0,  # scheduled like the other fronts (hookpress.local.processes.spawn)
        )
        lines = []
        for line in self._proc.stdout or ():
            lines.append(line.rstrip())
            match = _READY.search(line)
            if match:
                self._gunicorn = int(match.group(2))
                return self
        self.stop()
        raise SeedError("the seed anchor did not start:\n" + "\n".join(lines[-20:]))

    def stop(self) -> None:
        """SIGTERM serve.sh: its trap stops gunicorn, Redis, PostgreSQL and removes its folder."""
        proc, self._proc, self._gunicorn = self._proc, None, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SeedAnchor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
