"""Shared plumbing for the benchmarks: a migrated database, a live ASGI server, keep-alive
HTTP clients driven by threads, percentiles and the one JSON line each script prints.

Everything runs on loopback. ``DATABASE_URL`` selects an external Postgres instead of the
private one (``reactive.embedded``, fast mode, under /tmp).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import AsgiServer, scratch_dir  # noqa: E402

HEADERS = {"Content-Type": "application/json", "Convex-Client": "bench-0.1"}


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


@contextlib.contextmanager
def database(name: str = "reactive_bench") -> Iterator[str]:
    """Yield the URL of a migrated database: DATABASE_URL's, or a fresh one on a private server."""
    external = os.environ.get("DATABASE_URL")
    if external:
        migrate(external)
        yield external
        return
    from reactive.embedded import PostgresServer

    log("starting private Postgres (fast mode)")
    server = PostgresServer(scratch_dir("reactive-bench-pg-") / "data", fast=True)
    server.start(timeout=120)
    try:
        url = server.create_database(name)
        migrate(url)
        yield url
    finally:
        server.stop()


def migrate(url: str) -> None:
    log("migrating")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    # --skip-checks: the database check reactive.E004 (change log present) fails on a fresh
    # database before migrate has had a chance to create the change log.
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT, env=env, check=True, stdout=sys.stderr,
    )


@contextlib.contextmanager
def live_server(url: str, *, pool: bool = False, args: tuple[str, ...] = ()
                ) -> Iterator[AsgiServer]:
    """One uvicorn process serving tests.asgi (tests.settings) on the given database.

    ``pool`` turns on Django's psycopg pool (dj-database-url reads ``?pool=true`` into
    OPTIONS). Without it every request opens a new connection: under ASGI each request's
    sync code runs in a fresh thread, so CONN_MAX_AGE cannot keep one.
    """
    if pool:
        url += ("&" if "?" in url else "?") + "pool=true"
    server = AsgiServer({"DATABASE_URL": url}, args=args)
    log(f"starting uvicorn; log at {server.log_path}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    """Run one statement in autocommit and return the first column of the first row, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


class Client:
    """A keep-alive HTTP/1.1 connection (stdlib http.client: little client-side CPU)."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._connect = lambda: http.client.HTTPConnection(host, int(port), timeout=30)
        self._conn = self._connect()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        try:
            self._conn.request("POST", path, json.dumps(body), HEADERS)
            response = self._conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError):
            self._conn.close()
            self._conn = self._connect()
            return 0, None

    def close(self) -> None:
        self._conn.close()


@dataclass
class Run:
    """What one load phase saw: latencies (s) of successes and a count per outcome label."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.outcomes.get("ok", 0)

    def add(self, other: Run) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        for label, count in other.outcomes.items():
            self.outcomes[label] = self.outcomes.get(label, 0) + count

    def rate(self) -> float:
        return round(self.ok / self.seconds, 1) if self.seconds else 0.0

    def ms(self, pct: float) -> float:
        return round(percentile(self.latencies, pct) * 1000, 2)


def load(clients: list[Client], seconds: float, call: Callable[[Client], str]) -> Run:
    """Run ``call`` in a loop on every client (one thread each) for ``seconds``.

    ``call`` returns an outcome label; "ok" counts as a success and its latency is kept.
    """
    run = Run()
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)
    deadline = 0.0

    def worker(client: Client) -> None:
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        start.wait()
        while (began := time.perf_counter()) < deadline:
            label = call(client)
            if label == "ok":
                latencies.append(time.perf_counter() - began)
            outcomes[label] = outcomes.get(label, 0) + 1
        with lock:
            run.add(Run(0.0, latencies, outcomes))

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    # Wall time until the last in-flight request finished: requests started before the
    # deadline are counted, so they are timed too.
    run.seconds = time.perf_counter() - began
    return run


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def start_worker(db_url: str, redis_url: str, concurrency: int, *, dispatcher: bool = False
                 ) -> subprocess.Popen[bytes]:
    """A Celery worker on the test project (prefork, ``concurrency`` processes), logging to a
    scratch file; ``dispatcher`` also starts the reaction dispatcher in it."""
    log_path = scratch_dir("reactive-bench-worker-") / "worker.log"
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "tests.settings"}  # fmt: skip
    if dispatcher:
        env["REACTIVE_TEST_DISPATCHER"] = "1"
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
               "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "WARNING",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    extra = ", dispatcher" if dispatcher else ""
    log(f"starting a Celery worker (prefork, {concurrency} processes{extra}); log at {log_path}")
    with log_path.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
