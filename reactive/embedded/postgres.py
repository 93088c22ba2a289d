"""A private PostgreSQL server run as a child process of this Python process: finding the
binaries, initdb, the unprivileged account it runs as when we are root, its unix socket dir, and
database URLs. The lifecycle it shares with Redis is ``ChildServer``'s."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors, sql

from reactive.embedded.child import ChildServer
from reactive.embedded.ports import require_traversable, unprivileged_account

_log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "Install PostgreSQL with `pip install pgserver` (bundled PostgreSQL 16) or `apt-get install "
    "postgresql`, or pass bin_dir= the directory holding initdb and postgres."
)
_SOCKET_PATH_MAX = 100  # sun_path holds ~107 bytes; keep a margin


def find_bin_dir() -> Path:
    """Return the directory of the PostgreSQL binaries to use, chosen by ``REACTIVE_PG_BIN``.

    Unset: pgserver's bundled PostgreSQL 16, else Debian's. ``pgserver``: pgserver's only.
    ``system``: the newest ``/usr/lib/postgresql/*/bin``. Anything else: that directory.
    Raises FileNotFoundError naming what to install when nothing usable is found.
    """
    choice = os.environ.get("REACTIVE_PG_BIN", "")
    if choice not in ("", "system", "pgserver"):
        return _checked_bin_dir(Path(choice))
    if choice != "system":
        spec = importlib.util.find_spec("pgserver")  # find, don't import: we only want binaries
        if spec is not None and spec.origin is not None:
            return _checked_bin_dir(Path(spec.origin).parent / "pginstall" / "bin")
        if choice == "pgserver":
            raise FileNotFoundError(f"REACTIVE_PG_BIN=pgserver, but it is missing. {_INSTALL_HINT}")
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    if not debian:
        raise FileNotFoundError(f"No PostgreSQL binaries found. {_INSTALL_HINT}")
    return _checked_bin_dir(max(debian, key=lambda p: int(p.parent.name)))


def _checked_bin_dir(bin_dir: Path) -> Path:
    for name in ("initdb", "postgres"):
        if not os.access(bin_dir / name, os.X_OK):
            raise FileNotFoundError(f"{bin_dir / name} is not an executable. {_INSTALL_HINT}")
    return bin_dir


class PostgresServer(ChildServer):
    """PostgreSQL in ``data_dir`` as a child process; superuser ``postgres``, trust auth.

    ``start()`` runs initdb if ``data_dir`` holds no cluster, then ``postgres`` itself (no pg_ctl
    daemon) on ``host:port`` only, its unix socket in ``data_dir`` (a /tmp dir if that path is
    too long). As root, it runs as the ``postgres`` system user, or if there is none as a
    ``reactive`` system user it creates (PostgreSQL refuses to run as root).

    Across ``stop()``/``start()`` on one ``data_dir``, databases, roles, tables and rows survive
    (with ``fast=True``, i.e. fsync, synchronous_commit and full_page_writes off, a server
    crash loses recent commits and an OS crash may corrupt the cluster). The port (picked per
    instance unless given), sessions, temp tables and the socket do not.

    A data dir whose postmaster.pid names a live postgres is refused, not reused: we could not
    stop that server nor know its settings. A stale postmaster.pid is removed. The server gets
    SIGINT (fast shutdown) from ``stop()``, at interpreter exit, and on Linux when the spawning
    thread dies, so none is orphaned. Not thread-safe: drive start/stop from one thread.
    """

    _logger = _log
    _name = "postgres"
    _pid_file = "postmaster.pid"
    # SIGINT = fast, SIGQUIT = immediate shutdown (PostgreSQL docs, "Shutting Down the Server").
    _stop_signals = (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL)
    _exited = "PostgreSQL exited ({code}) starting."
    _not_ready = "PostgreSQL was not ready within {timeout}s."

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        bin_dir: Path | None = None,
        log_path: Path | None = None,
        fast: bool = False,
    ) -> None:
        """Configure without starting; raise FileNotFoundError if no binaries are usable.

        ``log_path`` defaults to ``<data_dir>.log`` beside the data dir (appended to).
        """
        super().__init__(data_dir, port=port, host=host, log_path=log_path, fast=fast)
        self._bin_dir = _checked_bin_dir(bin_dir) if bin_dir is not None else find_bin_dir()
        self._account: pwd.struct_passwd | None = None  # looked up by start()
        self._tmp_socket_dir: Path | None = None

    @property
    def url(self) -> str:
        """``postgresql://postgres@<host>:<port>/postgres``; usable once ``start()`` returned."""
        return self._url("postgres")

    def _url(self, database: str) -> str:
        return f"postgresql://postgres@{self._url_host}:{self._port}/{database}"

    def start(self, timeout: float = 60) -> None:
        """Initialise ``data_dir`` if needed, start the server, return once it takes connections.

        Idempotent while running. Raises FileNotFoundError/PermissionError for unusable binaries
        or directories, RuntimeError if initdb fails, the data dir is in use or the server
        exits, TimeoutError past ``timeout`` seconds overall; server errors carry the log's
        tail. On failure no server is left running.
        """
        super().start(timeout)

    def stop(self, timeout: float = 30) -> None:
        """Shut down (fast: open transactions roll back) and wait; idempotent.

        Escalates to an immediate shutdown, then SIGKILL, after ``timeout`` seconds.
        """
        super().stop(timeout)
        if self._tmp_socket_dir is not None:
            shutil.rmtree(self._tmp_socket_dir, ignore_errors=True)
            self._tmp_socket_dir = None

    def create_database(self, name: str, timeout: float = 10) -> str:
        """Create database ``name`` unless it exists and return its URL; safe to race."""
        timeout_s = max(2, int(timeout))  # libpq's minimum
        with psycopg.connect(self.url, autocommit=True, connect_timeout=timeout_s) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                # Another process may create it between our check and CREATE.
                with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self._url(name)

    def _make_dirs(self) -> None:
        self._account = account = unprivileged_account()
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        super()._make_dirs()
        if account is not None:
            require_traversable(self._data_dir.parent, account, f"data dir {self._data_dir}")
            require_traversable(self._bin_dir, account, "the PostgreSQL binaries")
            os.chown(self._data_dir, account.pw_uid, account.pw_gid)

    def _prepare(self, deadline: float) -> None:
        if not (self._data_dir / "PG_VERSION").exists():
            self._initdb(deadline)

    def _is_server_comm(self, comm: str) -> bool:
        return comm == "postgres"

    def _in_use_message(self, pid: int, lines: list[str]) -> str:
        port = lines[3] if len(lines) > 3 else "?"
        return (
            f"{self._data_dir} is in use by PostgreSQL pid {pid} (port {port}); two "
            f"servers cannot share a data dir. Stop it (`kill -INT {pid}`) or use another."
        )

    def _child_options(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        account = self._account
        if account is None:
            return {"env": env}
        home = account.pw_dir if os.path.isdir(account.pw_dir) else "/"
        env.update(HOME=home, USER=account.pw_name, LOGNAME=account.pw_name)
        groups = os.getgrouplist(account.pw_name, account.pw_gid)  # not root's groups
        return dict(
            env=env, cwd="/", user=account.pw_uid, group=account.pw_gid, extra_groups=groups
        )

    def _initdb(self, deadline: float) -> None:
        # --auth=trust covers the local, 127.0.0.1/32 and ::1/128 lines of pg_hba.conf.
        cmd = [str(self._bin_dir / "initdb"), "-D", str(self._data_dir), "-U", "postgres"]
        cmd += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        if self._fast:
            cmd.append("--no-sync")
        timeout = max(deadline - time.monotonic(), 1)
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, **self._child_options()
            )
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"initdb of {self._data_dir} took over {timeout:.0f}s.") from exc
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb of {self._data_dir} failed (exit {done.returncode}); it needs a missing "
                f"or empty directory. Output:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        _log.info("postgres initialised data_dir=%s bin_dir=%s", self._data_dir, self._bin_dir)

    def _socket_dir(self) -> Path:
        if len(f"{self._data_dir}/.s.PGSQL.{self._port}") <= _SOCKET_PATH_MAX:
            return self._data_dir
        self._tmp_socket_dir = Path(tempfile.mkdtemp(prefix="reactive-pgsock-", dir="/tmp"))
        if self._account is not None:
            os.chown(self._tmp_socket_dir, self._account.pw_uid, self._account.pw_gid)
        return self._tmp_socket_dir

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self._host,
            "port": str(self._port),
            "unix_socket_directories": str(self._socket_dir()),
            "max_connections": "200",
        }
        if self._fast:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        cmd = [str(self._bin_dir / "postgres"), "-D", str(self._data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _is_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        # What pg_ctl -w polls: postmaster.pid line 8 reads "ready" once connections are
        # accepted (LOCK_FILE_LINE_PM_STATUS in pidfile.h).
        try:
            lines = (self._data_dir / self._pid_file).read_text().splitlines()
        except OSError:
            return False
        return len(lines) > 7 and lines[0] == str(proc.pid) and lines[7].strip() == "ready"
