"""Each deployed archive imports with nothing but its own requirements.txt installed.

The archive is built exactly as the program uploads it, unzipped into a
fresh directory, and ``import main`` runs there in a fresh virtual
environment holding only that function's requirements: a dependency that
lives only in the developer's environment, or a core module left out of the
archive, fails here instead of in the first cold start.

A function whose folder does not exist yet in the repository is tested with
a fixture folder (a minimal entry point importing the core), so the test
names say which is which.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from infra_harness import FUNCTIONS, REPO, write_function
from venvs import clean_env, compile_source, venv_for

from infra import archive

pytestmark = pytest.mark.slow

CORE = REPO / "functions" / "hookpress"


def _source(name: str, tmp: Path) -> tuple[Path, str]:
    if _kind(name) == "repository":
        return REPO / "functions" / name, "repository"
    fixture = tmp / "fixture" / name
    write_function(fixture, name)
    return fixture, "fixture"


def _kind(name: str) -> str:
    real = REPO / "functions" / name
    has = (real / "main.py").is_file() and (real / "requirements.txt").is_file()
    return "repository" if has else "fixture"


@pytest.mark.parametrize("name", FUNCTIONS, ids=[f"{n}-{_kind(n)}" for n in FUNCTIONS])
def test_archive_imports_with_only_its_requirements(name: str, tmp_path: Path) -> None:
    source, kind = _source(name, tmp_path)
    files = archive.collect(source, CORE)
    unpacked = tmp_path / "unpacked"
    zip_path = tmp_path / f"{name}.zip"
    zip_path.write_bytes(archive.build_zip(files))
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(unpacked)
    assert not (unpacked / "hookpress" / "local").exists()
    assert not (unpacked / "hookpress" / "cli").exists()
    assert not (unpacked / "hookpress" / "ops").exists()

    venv = venv_for(unpacked / "requirements.txt")
    # The buildpack's own first step: every file compiles on the runtime's Python.
    compile_source(unpacked, str(venv / "bin" / "python"))
    assert (unpacked / "hookpress" / "__pycache__").is_dir()
    probe = (
        "import main, hookpress; "
        "print(main.__file__); print(hookpress.__file__); "
        f"assert callable(getattr(main, {name!r}))"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-E", "-s", "-c", probe],
        cwd=unpacked,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert result.returncode == 0, (
        f"{name} ({kind} folder) does not import from its archive:\n{result.stderr}"
    )
    main_file, core_file = result.stdout.split()[:2]
    # Both come from the unzipped archive, not from anything installed.
    assert Path(main_file).resolve().parent == unpacked.resolve()
    assert Path(core_file).resolve().parent == (unpacked / "hookpress").resolve()


def test_source_that_does_not_compile_is_refused_as_the_buildpack_refuses_it(
    tmp_path: Path,
) -> None:
    # The buildpack's `compileall -f -q .` fails the build on a syntax error; so does ours.
    (tmp_path / "main.py").write_text("def ingress(request):\n    return 'ok'\n")
    (tmp_path / "hookpress").mkdir()
    (tmp_path / "hookpress" / "broken.py").write_text("def f(:\n")
    with pytest.raises(AssertionError, match="compileall failed"):
        compile_source(tmp_path)
    (tmp_path / "hookpress" / "broken.py").write_text("def f():\n    return 1\n")
    compile_source(tmp_path)
    assert list((tmp_path / "hookpress" / "__pycache__").glob("broken.cpython-*.pyc"))
