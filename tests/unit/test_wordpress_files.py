"""wp-config.php from its template: every placeholder filled, every value a PHP literal."""

from __future__ import annotations

import re
from pathlib import Path

from hookpress.local.wordpress_files import KEYS, php_program, write_config


def _config(tmp_path: Path, **flags: bool) -> str:
    write_config(
        tmp_path,
        url="http://127.0.0.1:8080",
        db_host="localhost:/tmp/it's here/mysqld.sock",
        debug_log=tmp_path / "wp-debug.log",
        debug=flags.get("debug", False),
        debug_display=flags.get("debug_display", False),
    )
    return (tmp_path / "wp-config.php").read_text()


def test_every_placeholder_is_filled(tmp_path: Path) -> None:
    assert "'@" in php_program("wp-config.php")
    config = _config(tmp_path)
    assert not re.search(r"'@[A-Z_]+@'", config)
    assert "define( 'WP_HOME', 'http://127.0.0.1:8080' );" in config
    assert "define( 'WP_SITEURL', 'http://127.0.0.1:8080' );" in config
    assert "define( 'DB_HOST', 'localhost:/tmp/it\\'s here/mysqld.sock' );" in config


def test_keys_are_fresh_per_site(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    values = []
    for site in ("a", "b"):
        config = _config(tmp_path / site)
        found = dict(re.findall(r"define\( '([A-Z_]+)', '([^']*)' \);", config))
        values.append({name: found[name] for name in KEYS})
    assert all(len(value) >= 64 for value in values[0].values())
    assert len(set(values[0].values())) == len(KEYS)
    assert not set(values[0].values()) & set(values[1].values())


def test_debug_flags_are_php_booleans(tmp_path: Path) -> None:
    quiet = _config(tmp_path)
    assert "define( 'WP_DEBUG', false );" in quiet
    assert "define( 'WP_DEBUG_DISPLAY', false );" in quiet
    loud = _config(tmp_path, debug=True, debug_display=True)
    assert "define( 'WP_DEBUG', true );" in loud
    assert "define( 'WP_DEBUG_DISPLAY', true );" in loud
