"""A throwaway WordPress with the hookpress plugin, built from Debian's packages.

One :class:`WordPressServer` owns one work directory and everything under it:
a MariaDB data directory served on a unix socket (no TCP), a copy of Debian's
``/usr/share/wordpress`` with its own ``wp-config.php`` and the plugin, and
``php -S`` with several workers so requests really run concurrently. Logs go
to ``<workdir>/logs``. :meth:`WordPressServer.stop` ends every process it
started and frees the port; the context manager and an ``atexit`` hook call it.

Used by the end-to-end tests and by the local stack (``nox -s dev``)::

    with WordPressServer(Path(".hookpress/wordpress")) as server:
        site = server.site
        server.set_options(rate_per_minute=60, burst=10)

Missing software raises :class:`WordPressError` naming the Debian package to
install; nothing here skips. What the site is made of (the packages it needs,
its files, the PHP programs in ``php/``) is ``wordpress_files``; its processes
are started and stopped by ``processes``.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from hookpress.local.processes import (
    ProcessExited,
    WaitTimeout,
    free_port,
    spawn,
    stop,
    wait_http,
    wait_unix,
)
from hookpress.local.wordpress_files import (
    PLUGIN_SLUG,
    Tools,
    WordPressError,
    build_docroot,
    php_ini,
    require_tools,
    write_config,
)

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_BURST",
    "DEFAULT_RATE_PER_MINUTE",
    "DEFAULT_TRUSTED_PROXIES",
    "WordPressError",
    "WordPressServer",
    "WordPressSite",
]

INGEST_ROLE: Final = "hookpress_ingest"

#: Options every new site starts with, and that :meth:`WordPressServer.reset_options`
#: restores: loopback only, no proxies, a rate no test reaches by accident.
DEFAULT_ALLOWLIST: Final[tuple[str, ...]] = ("127.0.0.1", "::1")
DEFAULT_TRUSTED_PROXIES: Final[tuple[str, ...]] = ()
DEFAULT_RATE_PER_MINUTE: Final = 60000
DEFAULT_BURST: Final = 10000

# AF_UNIX paths are limited to 108 bytes on Linux, NUL included.
_MAX_SOCKET_PATH: Final = 100
_START_TIMEOUT: Final = 60.0
_PHP_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class WordPressSite:
    """How to reach a running site. The passwords are throwaway values."""

    url: str
    rest_base: str
    admin_user: str
    admin_password: str
    admin_app_password: str
    ingest_user: str
    app_password: str

    @property
    def ingest_url(self) -> str:
        """The plugin's ingest route."""
        return f"{self.rest_base}/ai-guy/v1/ingest"


def _default_plugin_dir() -> Path:
    # functions/hookpress/local/wordpress.py -> repository root.
    return Path(__file__).resolve().parents[3] / "wordpress" / PLUGIN_SLUG


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


_T = TypeVar("_T")


def _running(value: _T | None) -> _T:
    """``value``, which :meth:`WordPressServer.start` sets; WordPressError while it is unset."""
    if value is None:
        raise WordPressError("the WordPress server is not running")
    return value


class WordPressServer:
    """MariaDB + WordPress + the hookpress plugin under one work directory.

    ``workers`` is ``PHP_CLI_SERVER_WORKERS``: how many requests PHP serves at
    once. ``plugin_dir`` defaults to ``wordpress/hookpress`` of this
    repository; it is copied, so later edits need a restart. ``debug`` turns on
    ``WP_DEBUG``: notices go to ``logs/wp-debug.log`` and error responses carry
    internal detail, as they would on a developer's site. ``debug_display``
    also turns on ``WP_DEBUG_DISPLAY`` (WordPress's default once ``WP_DEBUG``
    is on), under which wpdb prints failed queries into the page.
    ``mariadb_options`` are extra ``mariadbd`` arguments (the WordPress
    benchmark sizes the buffer pool with them).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        workers: int = 8,
        plugin_dir: Path | None = None,
        debug: bool = False,
        debug_display: bool = False,
        mariadb_options: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workdir = Path(workdir).resolve()
        self.logs_dir = self.workdir / "logs"
        self._requested_port = port
        self._workers = workers
        self._debug = debug or debug_display
        self._debug_display = debug_display
        self._mariadb_options = tuple(mariadb_options)
        self._plugin_dir = (plugin_dir or _default_plugin_dir()).resolve()
        self._docroot = self.workdir / "docroot"
        self._datadir = self.workdir / "mysql" / "data"
        self._runtime = self.workdir / "run"
        self._socket_dir: Path | None = None
        self._tools: Tools | None = None
        self._mariadb: subprocess.Popen[bytes] | None = None
        self._php: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._site: WordPressSite | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> WordPressServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def site(self) -> WordPressSite:
        """The running site; raises if :meth:`start` has not succeeded."""
        return _running(self._site)

    @property
    def port(self) -> int:
        """The HTTP port of the running site."""
        return _running(self._port)

    def start(self) -> WordPressSite:
        """Create the database, install WordPress, activate the plugin, serve it."""
        if self._site is not None:
            return self._site
        self._tools = require_tools()
        if not (self._plugin_dir / f"{PLUGIN_SLUG}.php").is_file():
            raise WordPressError(
                f"no plugin at {self._plugin_dir}: pass plugin_dir= pointing at wordpress/hookpress"
            )
        atexit.register(self.stop)
        try:
            self._prepare_dirs()
            self._start_mariadb()
            build_docroot(self._docroot, self._plugin_dir, self._runtime)
            port = self._requested_port or free_port()
            self._write_config(port)
            site = self._install(port)
            self._start_php(port)
            self._site = site
            return site
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop PHP, then MariaDB; wait until both have exited. Idempotent."""
        self._site = None
        self._port = None
        php, self._php = self._php, None
        mariadb, self._mariadb = self._mariadb, None
        if php is not None:
            # SIGINT is how the PHP server shuts down (master and workers).
            stop(php, signal.SIGINT, timeout_s=10)
        if mariadb is not None:
            stop(mariadb, signal.SIGTERM, timeout_s=60)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        atexit.unregister(self.stop)

    @property
    def docroot(self) -> Path:
        """The site's document root (drop-ins and must-use plugins go under wp-content)."""
        return self._docroot

    @property
    def db_socket(self) -> Path:
        """MariaDB's unix socket (user root, no password, database ``wordpress``)."""
        return self._socket

    def restart_php(self) -> None:
        """Stop ``php -S`` and start it again on the same port.

        The PHP server does not replace a worker that died (a test that kills
        one mid-request leaves it a worker short); this brings every worker back.
        """
        port = self.port
        php, self._php = self._php, None
        if php is not None:
            stop(php, signal.SIGINT, timeout_s=10)
        tools = self._started_tools()
        log = self.logs_dir / "php-server.log"
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            self._php = self._spawn_php(tools, port, log)
            if self._wait_http(self._php, port, log):
                return
            # The old socket may linger a moment after the old server exited.
            stop(self._php, signal.SIGINT, timeout_s=10)
            self._php = None
            if time.monotonic() > deadline:
                raise WordPressError(f"php -S did not restart on port {port}:\n{_tail(log)}")
            time.sleep(0.5)

    # -- configuration used by tests and the local stack -------------------

    def set_options(
        self,
        *,
        allowlist: Sequence[str] | None = None,
        trusted_proxies: Sequence[str] | None = None,
        rate_per_minute: int | None = None,
        burst: int | None = None,
    ) -> None:
        """Update plugin options (through the plugin's own sanitizers).

        Setting the rate or the burst also refills the token bucket.
        """
        args: dict[str, Any] = {}
        if allowlist is not None:
            args["allowlist"] = list(allowlist)
        if trusted_proxies is not None:
            args["trusted_proxies"] = list(trusted_proxies)
        if rate_per_minute is not None:
            args["rate_per_minute"] = rate_per_minute
        if burst is not None:
            args["burst"] = burst
        if args:
            self._wp("set-options", args)

    def reset_options(self) -> None:
        """Restore the options a new site starts with, and a full bucket."""
        self.set_options(
            allowlist=DEFAULT_ALLOWLIST,
            trusted_proxies=DEFAULT_TRUSTED_PROXIES,
            rate_per_minute=DEFAULT_RATE_PER_MINUTE,
            burst=DEFAULT_BURST,
        )

    def create_user(self, login: str, role: str) -> str:
        """Create a user with one role; return an application password for it."""
        result = self._wp("create-user", {"login": login, "role": role})
        return str(result["app_password"])

    def run_php(self, code: str, *, timeout: float = _PHP_TIMEOUT) -> str:
        """Run PHP code with WordPress loaded (php-cli); return what it printed.

        For tests and diagnostics only: it runs ``eval`` on the given code.
        """
        return str(self._wp("eval", {"code": code}, timeout=timeout)["output"])

    def run_php_file(
        self, path: Path, args: dict[str, Any] | None = None, *, timeout: float = _PHP_TIMEOUT
    ) -> str:
        """Run a PHP file with WordPress loaded (php-cli); return what it printed.

        The file reads ``args`` as ``$hp_args``. For tests and diagnostics only.
        """
        request = {"file": str(Path(path).resolve()), "args": args or {}}
        return str(self._wp("run", request, timeout=timeout)["output"])

    def sql(self, statement: str) -> list[dict[str, Any]]:
        """Run one SQL statement through WordPress's ``$wpdb`` (php-cli).

        Returns the rows of a statement that has any, as dicts of strings
        (NULL as None), else ``[]``; a database error raises WordPressError.
        For tests, benchmarks and diagnostics.
        """
        rows = self._wp("sql", {"statement": statement})["rows"]
        return list(rows)

    def uninstall_plugin(self, *, timeout: float = _PHP_TIMEOUT) -> None:
        """Deactivate the plugin, then run its uninstall.php, as wp-admin's Delete does."""
        self._wp("deactivate", {})
        self._wp("uninstall", {}, timeout=timeout)

    # -- start-up steps ----------------------------------------------------

    def _prepare_dirs(self) -> None:
        for stale in (self.workdir / "mysql", self._docroot, self._runtime):
            shutil.rmtree(stale, ignore_errors=True)
        for directory in (self._datadir, self._runtime, self.logs_dir, self.workdir / "mysql/tmp"):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def _socket(self) -> Path:
        if self._socket_dir is None:
            candidate = self.workdir / "mysql" / "mysqld.sock"
            if len(os.fsencode(candidate)) <= _MAX_SOCKET_PATH:
                self._socket_dir = None
                return candidate
            self._socket_dir = Path(tempfile.mkdtemp(prefix="hookpress-db-"))
        return self._socket_dir / "mysqld.sock"

    def _user_args(self) -> list[str]:
        # mariadbd refuses to run as root unless told to.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _started_tools(self) -> Tools:
        if self._tools is None:
            raise WordPressError("the WordPress server has not been started")
        return self._tools

    def _start_mariadb(self) -> None:
        tools = self._started_tools()
        log = self.logs_dir / "mariadb-install.log"
        with log.open("wb") as out:
            done = subprocess.run(  # noqa: S603 - fixed arguments
                [
                    tools.install_db,
                    "--no-defaults",
                    f"--datadir={self._datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                    *self._user_args(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=_START_TIMEOUT * 2,
            )
        if done.returncode != 0:
            raise WordPressError(f"mariadb-install-db failed:\n{_tail(log)}")

        socket_path = self._socket
        log = self.logs_dir / "mariadb.log"
        self._mariadb = spawn(
            [
                tools.mariadbd,
                "--no-defaults",
                f"--datadir={self._datadir}",
                f"--socket={socket_path}",
                f"--pid-file={self.workdir / 'mysql' / 'mysqld.pid'}",
                f"--tmpdir={self.workdir / 'mysql' / 'tmp'}",
                f"--log-error={log}",
                "--skip-networking",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                "--max-connections=300",
                "--innodb-buffer-pool-size=64M",
                # A throwaway database: durability traded for speed.
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--sync-binlog=0",
                *self._mariadb_options,
                *self._user_args(),
            ],
            log=self.logs_dir / "mariadb.out",
        )
        try:
            wait_unix(socket_path, _START_TIMEOUT, self._mariadb)
        except ProcessExited:
            raise WordPressError(f"mariadbd exited at start-up:\n{_tail(log)}") from None
        except WaitTimeout:
            raise WordPressError(
                f"mariadbd did not open {socket_path} in time:\n{_tail(log)}"
            ) from None

    def _write_config(self, port: int) -> None:
        write_config(
            self._docroot,
            url=f"http://127.0.0.1:{port}",
            db_host=f"localhost:{self._socket}",
            debug_log=self.logs_dir / "wp-debug.log",
            debug=self._debug,
            debug_display=self._debug_display,
        )

    def _install(self, port: int) -> WordPressSite:
        admin_user = "admin"
        admin_password = secrets.token_urlsafe(18)
        ingest_user = "hookpress-ingest"
        url = f"http://127.0.0.1:{port}"
        self._wp(
            "install",
            {
                "socket": str(self._socket),
                "title": "hookpress local",
                "admin_user": admin_user,
                "admin_password": admin_password,
            },
        )
        configured = self._wp(
            "configure",
            {
                "admin_user": admin_user,
                "ingest_user": ingest_user,
                "ingest_role": INGEST_ROLE,
                "allowlist": list(DEFAULT_ALLOWLIST),
                "trusted_proxies": list(DEFAULT_TRUSTED_PROXIES),
                "rate_per_minute": DEFAULT_RATE_PER_MINUTE,
                "burst": DEFAULT_BURST,
            },
        )
        return WordPressSite(
            url=url,
            rest_base=f"{url}/wp-json",
            admin_user=admin_user,
            admin_password=admin_password,
            admin_app_password=str(configured["admin_app_password"]),
            ingest_user=ingest_user,
            app_password=str(configured["ingest_app_password"]),
        )

    def _start_php(self, port: int) -> None:
        tools = self._started_tools()
        for attempt in range(3):
            log = self.logs_dir / "php-server.log"
            self._php = self._spawn_php(tools, port, log)
            if self._wait_http(self._php, port, log):
                self._port = port
                return
            # Exited at once: most likely the port was taken after we chose it.
            stop(self._php, signal.SIGINT, timeout_s=10)
            self._php = None
            if self._requested_port is not None or attempt == 2:
                raise WordPressError(f"php -S did not start on port {port}:\n{_tail(log)}")
            port = free_port()
            self._write_config(port)
            self._site = None
        raise AssertionError("unreachable")

    def _spawn_php(self, tools: Tools, port: int, log: Path) -> subprocess.Popen[bytes]:
        return spawn(
            [
                tools.php,
                *php_ini(self.logs_dir),
                "-S",
                f"127.0.0.1:{port}",
                "-t",
                str(self._docroot),
                str(self._runtime / "router.php"),
            ],
            log=log,
            env={**os.environ, "PHP_CLI_SERVER_WORKERS": str(self._workers)},
        )

    def _wait_http(self, php: subprocess.Popen[bytes], port: int, log: Path) -> bool:
        """Whether WordPress answered; False if ``php -S`` exited first (a port taken)."""
        probe = f"http://127.0.0.1:{port}/wp-json/"
        try:
            wait_http(probe, _START_TIMEOUT, php, interval_s=0.1, request_timeout_s=5)
        except ProcessExited:
            return False
        except WaitTimeout:
            raise WordPressError(
                f"WordPress did not answer {probe} in time:\n{_tail(log)}"
            ) from None
        return True

    # -- php-cli helper ----------------------------------------------------

    def _wp(
        self, command: str, args: dict[str, Any], *, timeout: float = _PHP_TIMEOUT
    ) -> dict[str, Any]:
        """Run one command of the wp-tool.php helper; return its JSON result."""
        tools = self._started_tools()
        token = secrets.token_hex(8)
        args_file = self._runtime / f"args-{token}.json"
        result_file = self._runtime / f"result-{token}.json"
        # Arguments go through a file: a command line is limited in length.
        args_file.write_text(json.dumps(args))
        log = self.logs_dir / "wp-tool.log"
        try:
            with log.open("ab") as out:
                out.write(f"--- {command}\n".encode())
                out.flush()
                done = subprocess.run(  # noqa: S603 - fixed program, arguments are data
                    [
                        tools.php,
                        "-d",
                        "display_errors=stderr",
                        "-d",
                        "memory_limit=256M",
                        str(self._runtime / "wp-tool.php"),
                        str(self._docroot),
                        command,
                        str(args_file),
                        str(result_file),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    check=False,
                    timeout=timeout,
                )
            if done.returncode != 0 or not result_file.exists():
                raise WordPressError(
                    f"wp-tool {command} failed (exit {done.returncode}):\n{_tail(log)}"
                )
            result: dict[str, Any] = json.loads(result_file.read_text())
            return result
        except subprocess.TimeoutExpired as error:
            raise WordPressError(f"wp-tool {command} timed out:\n{_tail(log)}") from error
        finally:
            result_file.unlink(missing_ok=True)
            args_file.unlink(missing_ok=True)
