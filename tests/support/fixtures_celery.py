"""Celery fixtures: the test Celery app on the test Redis, real worker and beat processes
(``celery -A tests.celery_app ...``) on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from tests.settings import REACTION_TEST_QUEUE
from tests.support import servers


class CeleryProcess:
    """``celery -A tests.celery_app <args>`` in a child process, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], *, ready: str) -> None:
        self.directory = servers.scratch_dir("reactive-celery-")
        self.log_path = self.directory / "celery.log"
        self._args = args
        self._env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        self._ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (to start several at once)."""
        command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", *self._args]
        self._offset = self.log_size()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=servers.ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self._ready not in self.log_text()[self._offset :]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self._args[0]} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"celery {self._args[0]} not ready:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine or container dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        return len(self.log_text())

    def received(self, since: int = 0, task: str = "reactive.run_job") -> int:
        """How many ``task`` messages the worker logged receiving after log offset ``since``."""
        return sum(
            1
            for line in self.log_text()[since:].splitlines()
            if f"{task}[" in line and "received" in line
        )

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def worker_process(
    database_url: str, redis_url: str, *, name: str, pool: str = "solo",
    env: dict[str, str] | None = None,
) -> CeleryProcess:
    args = ["worker", "--pool", pool, "--loglevel", "INFO", "--hostname", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if pool != "solo":
        args += ["--concurrency", "4"]
    if (env or {}).get("REACTIVE_TEST_DISPATCHER") == "1":  # it sends drains to this queue
        args += ["--queues", f"celery,{REACTION_TEST_QUEUE}"]
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **(env or {})}
    return CeleryProcess(args, env, ready=" ready.")


def beat_process(database_url: str, redis_url: str, *, loglevel: str = "INFO") -> CeleryProcess:
    process = CeleryProcess([], {"DATABASE_URL": database_url, "REDIS_URL": redis_url}, ready="")
    schedule, pidfile = process.directory / "schedule", process.directory / "beat.pid"
    process._args = ["beat", "--loglevel", loglevel, "-s", str(schedule), "--pidfile", str(pidfile)]
    process._ready = "beat: Starting..."
    return process


@pytest.fixture(scope="session")
def celery_app(redis_url: str) -> Celery:
    """The test project's Celery app, publishing to the test Redis, current in every thread."""
    from tests.celery_app import app

    app.conf.broker_url = redis_url
    app.set_default()
    app.set_current()
    return app


@pytest.fixture(scope="session")
def _session_worker(test_database_url: str, redis_url: str) -> Iterator[CeleryProcess]:
    worker = worker_process(test_database_url, redis_url, name="session")
    yield worker
    worker.stop()


@pytest.fixture
def worker(_session_worker: CeleryProcess, celery_app: Celery) -> CeleryProcess:
    """A running worker (solo pool) on the test database and Redis; restarted if a test
    killed it."""
    if not _session_worker.alive:
        _session_worker.start()
    return _session_worker


@pytest.fixture
def reacting_worker(
    make_celery: Callable[..., CeleryProcess], redis_url: str, celery_app: Celery
) -> CeleryProcess:
    """A worker of its own running the reaction dispatcher (off in the shared worker: its
    drains would race the per-test flush). Stopped before the test's database is flushed."""
    process = make_celery("worker", redis_url, name="reacting", env=DISPATCHER_ON)
    process.start()
    return process


DISPATCHER_ON = {"REACTIVE_TEST_DISPATCHER": "1"}


@pytest.fixture
def make_celery(test_database_url: str) -> Iterator[Callable[..., CeleryProcess]]:
    """Start extra worker or beat processes for one test; all are stopped after it."""
    started: list[CeleryProcess] = []

    def make(kind: str, redis_url: str, **kwargs: Any) -> CeleryProcess:
        if kind == "worker":
            process = worker_process(test_database_url, redis_url, **kwargs)
        else:
            process = beat_process(test_database_url, redis_url, **kwargs)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
