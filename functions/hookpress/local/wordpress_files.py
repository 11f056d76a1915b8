"""What a throwaway WordPress site is made of: Debian's packages, its files, our PHP programs.

:func:`require_tools` finds php-cli (with mysqli), MariaDB and Debian's
WordPress, or names the Debian package to install. :func:`build_docroot` and
:func:`write_config` lay out the site's files.

The programs are real PHP files in ``php/`` beside this module (package data,
checked with ``php -l`` by ``nox -s lint``):

- ``wp-config.php``: the site's configuration, a template whose ``'@NAME@'``
  strings :func:`write_config` fills per site;
- ``router.php``: the router of ``php -S`` (files as they are, everything else
  to WordPress's front controller);
- ``wp-tool.php``: run by php-cli with WordPress loaded, for the install and
  the harness's commands (options, users, SQL, eval, uninstall).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = [
    "PLUGIN_SLUG",
    "WORDPRESS_SOURCE",
    "Tools",
    "WordPressError",
    "build_docroot",
    "php_ini",
    "php_program",
    "php_string",
    "require_tools",
    "write_config",
]

WORDPRESS_SOURCE: Final = Path("/usr/share/wordpress")
PLUGIN_SLUG: Final = "hookpress"
#: The secret keys and salts wp-config.php defines, each a fresh random value per site.
KEYS: Final = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)
_PLACEHOLDER: Final = re.compile(r"'@([A-Z_]+)@'")


class WordPressError(RuntimeError):
    """The throwaway WordPress could not be started, configured or queried.

    The message says what failed and, for missing software, which Debian
    package provides it; start-up failures end with the tail of the log.
    """


@dataclass(frozen=True)
class Tools:
    """The programs a site runs: php-cli, MariaDB's server and its installer."""

    php: str
    mariadbd: str
    install_db: str


def _find(name: str, *fallbacks: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def require_tools() -> Tools:
    """The programs, or a :class:`WordPressError` naming the Debian package to install."""
    php = _find("php", "/usr/bin/php")
    if php is None:
        raise WordPressError("php not found: install the Debian package php-cli")
    probe = subprocess.run(  # noqa: S603 - fixed arguments
        [php, "-r", 'exit(extension_loaded("mysqli") ? 0 : 3);'],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        raise WordPressError("PHP has no mysqli extension: install the Debian package php-mysql")
    mariadbd = _find("mariadbd", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
    install_db = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")
    if mariadbd is None or install_db is None:
        raise WordPressError(
            "mariadbd or mariadb-install-db not found: install the Debian package mariadb-server"
        )
    if not (WORDPRESS_SOURCE / "wp-settings.php").is_file():
        raise WordPressError(
            f"{WORDPRESS_SOURCE} has no WordPress: install the Debian package wordpress"
        )
    return Tools(php=php, mariadbd=mariadbd, install_db=install_db)


def php_program(name: str) -> str:
    """The text of one of the PHP programs in ``php/``."""
    return resources.files("hookpress.local").joinpath("php", name).read_text()


def php_string(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_docroot(docroot: Path, plugin_dir: Path, runtime: Path) -> None:
    """Copy WordPress and the plugin into ``docroot``; put the router and wp-tool in ``runtime``."""

    # A real copy, not symlinks: PHP resolves symlinks in __FILE__, and
    # WordPress finds wp-config.php next to the resolved wp-load.php,
    # which would be Debian's (reading /etc/wordpress). The .htaccess
    # symlink to /etc is left out so nothing here can write there.
    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {".htaccess", "wp-config.php"} if Path(directory) == WORDPRESS_SOURCE else set()
        if Path(directory) == WORDPRESS_SOURCE / "wp-content":
            skip |= {"languages", "plugins"}
        return skip & set(names)

    shutil.copytree(WORDPRESS_SOURCE, docroot, ignore=ignore, ignore_dangling_symlinks=True)
    plugins = docroot / "wp-content" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copytree(plugin_dir, plugins / PLUGIN_SLUG)
    (docroot / "wp-content" / "uploads").mkdir(exist_ok=True)
    for program in ("router.php", "wp-tool.php"):
        (runtime / program).write_text(php_program(program))


def write_config(
    docroot: Path,
    *,
    url: str,
    db_host: str,
    debug_log: Path,
    debug: bool,
    debug_display: bool,
) -> None:
    """Write ``docroot/wp-config.php`` from the template, with fresh keys and salts."""
    values = {
        "DB_HOST": php_string(db_host),
        **{name: php_string(secrets.token_urlsafe(48)) for name in KEYS},
        "URL": php_string(url),
        "WP_DEBUG": "true" if debug else "false",
        "WP_DEBUG_LOG": php_string(str(debug_log)),
        "WP_DEBUG_DISPLAY": "true" if debug_display else "false",
    }
    template = php_program("wp-config.php")
    unknown = set(_PLACEHOLDER.findall(template)) - set(values)
    if unknown:
        raise WordPressError(f"wp-config.php has placeholders nothing fills: {sorted(unknown)}")
    (docroot / "wp-config.php").write_text(
        _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    )


def php_ini(logs_dir: Path) -> list[str]:
    """The ``-d`` settings ``php -S`` runs the site with."""
    settings = {
        "display_errors": "0",
        "log_errors": "1",
        "error_log": str(logs_dir / "php-error.log"),
        "memory_limit": "256M",
        "post_max_size": "8M",
        # Compiled scripts are shared by the forked workers: WordPress
        # loads hundreds of files per request.
        "opcache.enable_cli": "1",
    }
    args: list[str] = []
    for key, value in settings.items():
        args += ["-d", f"{key}={value}"]
    return args
