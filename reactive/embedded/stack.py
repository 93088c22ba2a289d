"""The development stack behind ``make run``: embedded Postgres and Redis, migrations, an ASGI
server, a Celery worker and beat, supervised together and stopped together."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import service_url
from .output import Prefixer
from .ports import die_with_parent, free_port
from .postgres import PostgresServer
from .redis import RedisServer

logger = logging.getLogger(__name__)

PREFERRED_PG_PORT = 54329
PREFERRED_REDIS_PORT = 63799


@dataclass
class StackConfig:
    """What to run. ``asgi_app`` is ``module:attribute``; ``celery_app`` None skips Celery,
    for the reason in ``celery_skipped`` (printed). ``verbose`` runs Celery at DEBUG (with the
    periodic ticks); ``colour`` colours each process's prefix."""

    state_dir: Path
    settings_module: str
    asgi_app: str
    celery_app: str | None
    host: str = "127.0.0.1"
    port: int = 8000
    project_dir: Path = field(default_factory=Path.cwd)
    banner: str = ""
    celery_skipped: str = ""
    verbose: bool = False
    colour: bool = False


class DevStack:
    """Starts every process of the development stack and stops them all on exit.

    Order: Postgres, Redis, ``migrate``, then the ASGI server, the Celery worker and beat.
    ``DATABASE_URL``/``REDIS_URL`` in the environment replace the embedded servers. Data lives
    in ``state_dir`` and survives restarts. ``run()`` blocks until Ctrl-C or a child exits.
    """

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.output = Prefixer(say, colour=config.colour)
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._servers: list[PostgresServer | RedisServer] = []
        # Unbuffered children: their lines reach the prefixer (a pipe) as they are written.
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def say(self, text: str) -> None:
        self.output.line("dev", text)

    def run(self) -> int:
        self._announce()
        with self._running():
            url = f"http://{self.config.host}:{self.config.port}/"
            if not self._wait_listening():  # it stopped (supervise says so) or hangs
                self.say(f"asgi does not accept connections on {url}; see its log above.")
                return self._supervise()
            self.say(f"django-reactivity dev stack ready: {url}")
            if self.config.banner:
                self.say(self.config.banner)
            self.say("Press Ctrl-C to stop every process.")
            return self._supervise()

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self._start_services()
            self._migrate()
            self._start_processes()
            yield
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def _announce(self) -> None:
        """Say what will run, and what will not and why, before anything starts."""
        c = self.config
        for name, what in (("DATABASE_URL", "PostgreSQL"), ("REDIS_URL", "Redis")):
            where = f"{name} from the environment" if self.env.get(name) else "embedded"
            self.say(f"runs   {what}: {where}")
        self.say(f"runs   asgi: daphne serving {c.asgi_app} on http://{c.host}:{c.port}/")
        if c.celery_app:
            self.say(f"runs   worker and beat: Celery app {c.celery_app}.celery "
                     "(scheduled functions and crons)")
        else:
            self.say(f"skips  Celery worker and beat: {c.celery_skipped or 'no Celery app'}. "
                     "Scheduled functions (ctx.scheduler) and crons will not run.")
        if not c.verbose:
            self.say("quiet  periodic ticks (cron tick, sweeper) log at DEBUG; --verbose shows "
                     "them")

    def _start_services(self) -> None:
        state = self.config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        if not self.env.get("DATABASE_URL"):
            self.say(f"starting PostgreSQL (data in {state / 'postgres'})")
            pg = PostgresServer(state / "postgres", port=_port(PREFERRED_PG_PORT))
            pg.start(timeout=120)
            self._servers.append(pg)
            url = pg.create_database(service_url.DEFAULT_DATABASE_NAME)
            self.env["DATABASE_URL"] = url
            service_url.record(state, database_url=url)
        if not self.env.get("REDIS_URL"):
            self.say(f"starting Redis (data in {state / 'redis'})")
            redis = RedisServer(state / "redis", port=_port(PREFERRED_REDIS_PORT))
            redis.start(timeout=60)
            self._servers.append(redis)
            self.env["REDIS_URL"] = redis.url
            service_url.record(state, redis_url=redis.url)

    def _migrate(self) -> None:
        self.say("applying migrations")
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", "migrate", "--no-input"],
            env={**self.env, "DJANGO_SETTINGS_MODULE": self.config.settings_module},
            cwd=self.config.project_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert proc.stdout is not None
        self.output.follow("migrate", proc.stdout)
        code = proc.wait(timeout=600)
        self.output.drain()
        if code != 0:
            raise SystemExit(f"migrate failed (exit {code}); see the output above.")

    def _start_processes(self) -> None:
        c = self.config
        self._spawn("asgi", [sys.executable, "-m", "daphne", "-b", c.host, "-p", str(c.port),
                             c.asgi_app])
        if c.celery_app:
            celery = [sys.executable, "-m", "celery", "-A", c.celery_app]
            level = "DEBUG" if c.verbose else "INFO"
            self._spawn("worker", [*celery, "worker", "--pool", "solo", "--loglevel", level])
            beat_db = c.state_dir / "celerybeat-schedule"
            self._spawn("beat", [*celery, "beat", "--loglevel", level, "-s", str(beat_db)])

    def _spawn(self, name: str, command: list[str]) -> None:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.config.settings_module}
        # A session of its own: Ctrl-C reaches only us, and we stop children in order.
        proc = subprocess.Popen(command, env=env, cwd=self.config.project_dir,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent())
        assert proc.stdout is not None
        self.output.follow(name, proc.stdout)
        self._children.append((name, proc))

    def _wait_listening(self, timeout: float = 120) -> bool:
        """Wait until the ASGI server accepts connections, so that "ready" means it; False
        when it exited first (or never listened within ``timeout``)."""
        import socket

        asgi = next(proc for name, proc in self._children if name == "asgi")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and asgi.poll() is None:
            try:
                socket.create_connection((self.config.host, self.config.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def _supervise(self) -> int:
        while True:
            for name, proc in self._children:
                code = proc.poll()
                if code is not None:
                    self.say(f"{name} exited with code {code}; stopping the stack.")
                    return code or 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop children (newest first), then Redis, then Postgres. Idempotent."""
        for _, proc in reversed(self._children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        # One deadline for all of them: Ctrl-C never waits STOP_TIMEOUT once per child.
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, proc in reversed(self._children):
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM; killed it")
                proc.kill()
                proc.wait(timeout=5)
        self._children.clear()
        self.output.drain()
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()


STOP_TIMEOUT = 10.0  # seconds the children get, together, between SIGTERM and SIGKILL


def _port(preferred: int) -> int:
    """The preferred port when free (so URLs stay stable across restarts), else any."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
