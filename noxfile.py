"""Every task of the project: `nox` runs lint, types, secrets, tests, infra and e2e.

`nox -l` lists the sessions; arguments after `--` go to the tool a session
runs (pytest, ruff, ...), e.g. `nox -s tests -- -k stripe`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nox

nox.options.sessions = ["lint", "types", "secrets", "tests", "infra", "rehearse", "e2e"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
SOURCES = ["functions", "infra", "tests", "bench", "noxfile.py"]
#: Where `nox -s lint` finds the PHP it checks with `php -l`: the plugin, the local
#: WordPress's programs (functions/hookpress/local/php), the end-to-end tests' PHP.
PHP_SOURCES = ["wordpress", "functions", "tests"]


def pytest(session: nox.Session, extras: str, *paths: str) -> None:
    """Install the project with these extras; run pytest on these paths plus the arguments."""
    session.install("-e", f".[{extras}]")
    session.run("pytest", *paths, *session.posargs)


def module(session: nox.Session, extras: str, name: str, **kwargs: Any) -> None:
    """Install the project with these extras; run ``python -m name`` with the arguments."""
    session.install("-e", f".[{extras}]")
    session.run("python", "-m", name, *session.posargs, **kwargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and the formatter's check, no changes written; `php -l` on the PHP."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", *(session.posargs or SOURCES))
    session.run("ruff", "format", "--check", *(session.posargs or SOURCES))
    php = shutil.which("php")
    if php is None:
        session.error(
            "php is not on PATH: the lint session checks the PHP sources with `php -l`. "
            "Install the Debian package php-cli (./scripts/bootstrap does)"
        )
    files = sorted(str(path) for top in PHP_SOURCES for path in Path(top).rglob("*.php"))
    if not files:
        session.error(f"no PHP found under {', '.join(PHP_SOURCES)}")
    for file in files:
        session.run(php, "-l", file, external=True, silent=True)
    session.log(f"php -l: {len(files)} files, no syntax errors")


@nox.session(python=PYTHON)
def types(session: nox.Session) -> None:
    """Mypy in strict mode over the functions and the Pulumi program."""
    session.install("-e", ".[types,test,infra]")
    session.run("mypy", *(session.posargs or ["functions", "infra"]))


@nox.session(python=PYTHON)
def secrets(session: nox.Session) -> None:
    """detect-secrets over every tracked file; a find not in the reviewed baseline fails.

    The scan runs against a copy of the baseline, so code moving up or down a file
    (which only changes line numbers) neither fails the check nor rewrites the file.
    """
    session.install("detect-secrets==1.5.0")
    files = session.run("git", "ls-files", "-z", external=True, silent=True) or ""
    tracked = [f for f in str(files).split("\0") if f and f != ".secrets.baseline"]
    copy = Path(session.create_tmp()) / "baseline.json"
    shutil.copyfile(".secrets.baseline", copy)
    session.run("detect-secrets", "scan", "--baseline", str(copy), *tracked)
    results = json.loads(copy.read_text())["results"]
    new = [
        f"{path}:{item['line_number']} ({item['type']})"
        for path, items in results.items()
        for item in items
        if "is_secret" not in item
    ]
    if new:
        session.error(
            "possible secrets not in the reviewed baseline:\n  " + "\n  ".join(new) + "\n"
            "A real secret: remove it. A test vector: run `detect-secrets scan --baseline "
            ".secrets.baseline`, mark it is_secret: false, and commit the baseline."
        )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests (the integration tier starts the real emulators)."""
    pytest(session, "test", "tests/unit", "tests/integration", "tests/fuzz")


@nox.session(python=PYTHON)
def infra(session: nox.Session) -> None:
    """The Pulumi program under pulumi.runtime.set_mocks: security properties of the graph."""
    pytest(session, "test,infra", "tests/infra")


@nox.session(python=PYTHON)
def rehearse(session: nox.Session) -> None:
    """The deployed configuration run here: the program's archives, environment and wiring.

    Each function's archive in a venv of its own requirements.txt (cached in
    .nox/function-venvs), push authentication on, emulators and a real WordPress.
    """
    pytest(session, "test,infra", "tests/rehearse")


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """End to end against a real WordPress, the emulators and both functions."""
    pytest(session, "test,e2e", "tests/e2e")


@nox.session(python=PYTHON)
def dev(session: nox.Session) -> None:
    """The whole pipeline on this machine: emulators, WordPress, both functions. Ctrl-C stops."""
    # Wait for the stack's own clean shutdown on Ctrl-C instead of nox's 0.5 s.
    module(session, "test", "hookpress.local.dev", interrupt_timeout=None)


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """Faults, kills and duplicates against the local stack: nothing lost, nothing applied twice."""
    module(session, "test,bench", "bench.chaos")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Hostile requests (100,000) at the ingress, hostile payloads (2,000) into WordPress.

    The suite runs 10,000 and 200 of them; `-- --deliver-cases 0` skips the second half.
    """
    module(session, "test,bench", "bench.fuzz")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput, latency, CPU and drain figures as ratios to floors measured in the same run."""
    # infra: the cold start runs each function from the archive the program builds
    module(session, "test,bench,infra", "bench.run")


@nox.session(python=PYTHON)
def wpbench(session: nox.Session) -> None:
    """WordPress at a million events against 1,000, as ratios (not in the default list: ~30 min)."""
    module(session, "test,e2e", "bench.wordpress")
