"""The WordPress harness fails loudly, naming what to install, and starts nothing then."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookpress.local import wordpress_files as harness
from hookpress.local.wordpress import WordPressError, WordPressServer


def _without(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    real_find = harness._find

    def find(name: str, *fallbacks: str) -> str | None:
        return None if name == missing else real_find(name, *fallbacks)

    monkeypatch.setattr(harness, "_find", find)


@pytest.mark.parametrize(
    ("missing", "package"),
    [("php", "php-cli"), ("mariadbd", "mariadb-server"), ("mariadb-install-db", "mariadb-server")],
)
def test_missing_program_names_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str, package: str
) -> None:
    _without(monkeypatch, missing)

    with pytest.raises(WordPressError, match=f"install the Debian package {package}"):
        WordPressServer(tmp_path).start()
    assert not (tmp_path / "mysql").exists()


def test_missing_wordpress_names_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(harness, "WORDPRESS_SOURCE", tmp_path / "no-wordpress")

    with pytest.raises(WordPressError, match="install the Debian package wordpress"):
        WordPressServer(tmp_path / "site").start()


def test_missing_plugin_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WordPressError, match="no plugin at"):
        WordPressServer(tmp_path / "site", plugin_dir=tmp_path / "nothing").start()


def test_site_is_unavailable_before_start(tmp_path: Path) -> None:
    server = WordPressServer(tmp_path)

    with pytest.raises(WordPressError, match="not running"):
        _ = server.site
    with pytest.raises(WordPressError, match="not been started"):
        server.set_options(burst=1)
    server.stop()  # stopping what never started is fine
