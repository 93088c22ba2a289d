"""Real servers for the test suite: private Postgres and Redis, and a live ASGI server process.

``DATABASE_URL`` / ``REDIS_URL`` in the environment select external servers instead.
Set ``REACTIVE_PG_BIN=system`` to use Debian's PostgreSQL instead of pgserver's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from reactive.embedded import PostgresServer, RedisServer
from reactive.embedded.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def scratch_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that an unprivileged server user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yield the URL of a Postgres server (the private one, or DATABASE_URL's)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    server = PostgresServer(scratch_dir("reactive-pg-") / "data", fast=True)
    server.start(timeout=120)
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def stoppable_postgres() -> Iterator[PostgresServer]:
    """A Postgres server of the caller's own, never DATABASE_URL's: a test may stop it (as a
    database that goes away under a running project) without harming any other test."""
    server = PostgresServer(scratch_dir("reactive-pg-stop-") / "data", fast=True)
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """Yield the URL of a Redis server (the private one, or REDIS_URL's)."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer(scratch_dir("reactive-redis-") / "data", fast=True)
    server.start(timeout=60)
    try:
        yield server.url
    finally:
        server.stop()


class AsgiServer:
    """The test project served by a real ASGI server (uvicorn, daphne or granian) in a child
    process."""

    def __init__(self, env: dict[str, str], *, server: str = "uvicorn",
                 args: tuple[str, ...] = ()) -> None:
        """``args``: extra command-line options for the server (benchmarks)."""
        self._args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch_dir("reactive-asgi-") / "server.log"
        # env may name another settings module (one that imports tests.settings).
        self._env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
            "REACTIVE_TEST_PUBLIC_URL": self.url, **env,
        }
        self._server = server
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self._server == "daphne":
            return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                    "tests.asgi:application"]
        if self._server == "granian":  # the app runs in a worker process it spawns
            return [sys.executable, "-m", "granian", "--interface", "asgi", "--host",
                    "127.0.0.1", "--port", str(self.port), "--no-access-log",
                    "--log-level", "warning", *self._args, "tests.asgi:application"]
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--log-level", "warning", *self._args,
                "tests.asgi:application"]

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"ASGI server exited early:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/query_ts", data=b"", timeout=2)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"ASGI server not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self, **env: str) -> None:
        """Stop, then start again on the same port with ``env`` added (a deploy: say, another
        ``DJANGO_SETTINGS_MODULE``); clients reconnect to the same URL."""
        self.stop()
        self._env.update(env)
        self.start()

    @property
    def pid(self) -> int:
        """The server process's id (it must be running)."""
        assert self._proc is not None and self._proc.poll() is None, "the server is not running"
        return self._proc.pid

    def kill(self) -> None:
        """SIGKILL the server process (no shutdown of any kind); ``start`` again reuses the port."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(15)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def serving(database_url: str, redis_url: str, **env: str) -> Iterator[AsgiServer]:
    """Another test-project server process on the test database, ``env`` added to its
    environment (another ``DJANGO_SETTINGS_MODULE``, say), stopped at the end."""
    server = AsgiServer({"DATABASE_URL": database_url, "REDIS_URL": redis_url, **env})
    server.start()
    try:
        yield server
    finally:
        server.stop()
