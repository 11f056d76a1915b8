"""A function under functions-framework (gunicorn), as Cloud Run runs it, on loopback.

The local stack, the chaos run and the rehearsal run the functions this way;
the benchmark's servers start the same command (:func:`framework_command`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hookpress.local.processes import free_port, spawn, stop, wait_tcp

__all__ = ["FUNCTIONS", "FunctionProcess", "framework_command"]

#: The repository's functions/ folder: functions/<name>/main.py is each function's entry point.
FUNCTIONS = Path(__file__).resolve().parents[2]


def framework_command(python: str, target: str, source: Path, port: int) -> list[str]:
    """The argv that serves ``target`` of ``source`` on 127.0.0.1:``port``."""
    return [
        python, "-m", "functions_framework",
        "--target", target, "--source", str(source),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


@dataclass
class FunctionProcess:
    """One function under functions-framework (gunicorn), in its own process group."""

    name: str
    target: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    source: Path | None = None  # default: functions/<name>/main.py
    # Another interpreter (a function's own virtualenv) and a working directory.
    python: str | None = None
    cwd: Path | None = None
    # False: the process sees ``env`` only (plus PATH and HOME), as in the cloud.
    inherit_env: bool = True
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid, while running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start and wait for the port."""
        source = self.source or FUNCTIONS / self.name / "main.py"
        base = (
            dict(os.environ)
            if self.inherit_env
            else {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        )
        self._proc = spawn(
            framework_command(self.python or sys.executable, self.target, source, self.port),
            log=self.log_path,
            env={**base, **self.env},
            cwd=self.cwd,
        )
        wait_tcp(self.port, 30, self._proc)

    def kill(self) -> None:
        """SIGKILL the whole group: an instance dying mid-request."""
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP the whole group: an instance with no CPU between requests, as Cloud Run
        leaves one under request-based billing (:meth:`resume` gives it back)."""
        self._group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the whole group: the CPU back, as the instance's next request brings it."""
        self._group(signal.SIGCONT)

    def _group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running")
        os.killpg(self._proc.pid, sig)  # spawn() made it its group's leader

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc, sig)
