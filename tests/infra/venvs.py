"""Virtualenvs built from a function's requirements.txt alone, as the buildpack builds them.

One venv per distinct (requirements.txt bytes, interpreter) pair, cached under
``.nox/function-venvs/`` so the infra and rehearse sessions of one run (and
later runs on the same machine) build each once. A venv is used only if its
build finished (a marker holding the requirements it was built from); nothing
else is ever installed into it.

The interpreter is Python 3.12, the cloud runtime's (``python312``), when the
machine has it (on PATH, or under pyenv), else the one running the tests;
:func:`function_python` says which.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".nox" / "function-venvs"
_MARKER = "hookpress-requirements.txt"


def _runs(python: str) -> bool:
    try:
        result = subprocess.run(
            [python, "-c", "import venv, ensurepip, sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "(3, 12)" in result.stdout


@cache
def function_python() -> str:
    """The interpreter function venvs are built with (3.12 if this machine has one)."""
    candidates = [shutil.which("python3.12") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    for candidate in candidates:
        if candidate and _runs(candidate):
            return candidate
    return sys.executable


def clean_env() -> dict[str, str]:
    """The environment for pip and the probes: nothing of the test run's Python leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def compile_source(directory: Path, python: str | None = None) -> None:
    """What the functions buildpack does to the unzipped source before anything runs.

    Google's Python functions-framework buildpack runs ``python3 -m compileall -f -q .``
    in the source directory at build time, "to prevent failures that would only
    manifest at run time" (GoogleCloudPlatform/buildpacks,
    ``cmd/python/functions_framework/lib/lib.go``): a file that does not compile fails
    the deploy, and the image carries every module's ``.pyc``, so a cold instance
    reads bytecode instead of compiling the source. Done the same way here, with the
    runtime's interpreter, so a cold start measured locally pays what the cloud's
    pays (not a compile per module under ``PYTHONDONTWRITEBYTECODE``).
    """
    result = subprocess.run(
        [python or function_python(), "-m", "compileall", "-f", "-q", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    if result.returncode != 0:
        raise AssertionError(
            f"compileall failed in {directory.name} (the buildpack would refuse it):\n"
            f"{result.stdout}{result.stderr}"
        )


def venv_for(requirements: Path) -> Path:
    """A venv holding exactly ``pip install -r requirements`` (built once, then reused)."""
    python = function_python()
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    content = requirements.read_bytes()
    key = hashlib.sha256(content + version.encode()).hexdigest()[:16]
    venv = CACHE / f"venv-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"venv-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = venv / _MARKER
        if marker.is_file() and marker.read_bytes() == content:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=900,
            env=clean_env(),
        )
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise AssertionError(f"pip install -r {requirements} failed:\n{result.stderr}")
        marker.write_bytes(content)
    return venv
