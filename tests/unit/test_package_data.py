"""Files the package reads that are not Python ship with it (pyproject's package-data)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "functions"


def _declared() -> set[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared: set[Path] = set()
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        base = PACKAGES.joinpath(*package.split("."))
        for pattern in patterns:
            declared |= set(base.glob(pattern))
    return declared


def test_every_non_python_file_of_the_package_is_package_data() -> None:
    shipped = {
        path
        for path in (PACKAGES / "hookpress").rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert shipped, "the package has no data files? (the PHP programs are one)"
    assert shipped <= _declared(), sorted(str(p) for p in shipped - _declared())


def test_the_php_programs_are_read_as_package_resources() -> None:
    from hookpress.local.wordpress_files import php_program

    php = resources.files("hookpress.local").joinpath("php")
    names = sorted(entry.name for entry in php.iterdir() if entry.name.endswith(".php"))
    assert names == ["router.php", "wp-config.php", "wp-tool.php"]
    for name in names:
        assert php_program(name).startswith("<?php\n"), name
