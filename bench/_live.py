"""Plumbing for the live-query benchmarks: many sync-protocol sessions on one event loop, a
writer thread that timestamps its commits, the server's Reactor counters and its memory.

Timestamps are ``time.perf_counter()`` in this one process (writer thread and receiving
sessions alike), so commit → push latencies need no clock agreement between processes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from _common import log, percentile

from tests.support.servers import ROOT, AsgiServer
from tests.support.syncclient import SyncClient

ADMIN_KEY = "tests-admin-key-0123456789"  # tests.settings REACTIVE["ADMIN_KEY"]
CHANNEL_QUERY = "testapp/bench:channel_messages"

SERVERS = {
    # --server choices of the live benchmarks: (ASGI server, its command-line options).
    # uvicorn's default websocket implementation (``--ws auto``) is websockets' sans-I/O one
    # since uvicorn 0.54 (0.55 here), with permessage-deflate negotiated.
    "uvicorn": ("uvicorn", ()),
    "uvicorn-nodeflate": ("uvicorn", ("--ws-per-message-deflate", "false")),
    "uvicorn-wsproto": ("uvicorn", ("--ws", "wsproto")),
    "uvicorn-wsproto-nodeflate": ("uvicorn", ("--ws", "wsproto",
                                              "--ws-per-message-deflate", "false")),
    "daphne": ("daphne", ()),
    # granian: Rust (hyper, tokio-tungstenite) owns the sockets and the framing; the app runs
    # in one worker process it spawns. It negotiates no compression.
    "granian": ("granian", ()),
    # Without uvicorn's keepalive ping (one timer per socket, every 20 s by default); the sync
    # protocol's clients notice a dead server themselves.
    "uvicorn-noping": ("uvicorn", ("--ws-ping-interval", "0")),
    "uvicorn-nodeflate-noping": ("uvicorn", ("--ws-per-message-deflate", "false",
                                             "--ws-ping-interval", "0")),
}

# (session, query id, decoded value, arrival time)
OnUpdate = Callable[["Session", int, Any, float], None]


class Session(SyncClient):
    """A SyncClient whose frames are read by a background task; each QueryUpdated is handed
    to ``on_update`` with the time its frame arrived. The Transition chain is still checked."""

    def __init__(self, url: str, on_update: OnUpdate | None = None) -> None:
        super().__init__(url)
        self.on_update = on_update
        self.updates = 0
        self.failures: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Session:
        await self.__aenter__()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.ws.close()

    async def subscribe_many(self, path: str, args_list: Iterable[dict[str, Any]]) -> list[int]:
        """Add many queries in one ModifyQuerySet; returns their query ids."""
        from reactive import values

        adds, ids = [], []
        for args in args_list:
            ids.append(self._next_query)
            adds.append({"type": "Add", "queryId": self._next_query, "udfPath": path,
                         "args": [values.encode(args)]})
            self._next_query += 1
        await self.modify(adds)
        return ids

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                self.handle(message)
                if message["type"] == "Transition":
                    self.transitions.clear()  # the chain is checked in handle(); keep no history
                    for mod in message["modifications"]:
                        if mod["type"] == "QueryUpdated":
                            self.updates += 1
                            if self.on_update is not None:
                                self.on_update(self, mod["queryId"],
                                               self.results[mod["queryId"]], arrived)
                        elif mod["type"] == "QueryFailed":
                            self.failures.append(mod.get("errorMessage", ""))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a closed socket or a broken chain: visible in the report
            self.failures.append(f"reader: {exc!r}")


async def open_sessions(url: str, count: int, on_update: OnUpdate | None = None,
                        concurrency: int = 50) -> list[Session]:
    """Connect ``count`` sessions, ``concurrency`` handshakes at a time."""
    sessions: list[Session] = []
    for start in range(0, count, concurrency):
        batch = [Session(url, on_update) for _ in range(min(concurrency, count - start))]
        await asyncio.gather(*(s.start() for s in batch))
        sessions += batch
        if len(sessions) % 500 < concurrency:
            log(f"  {len(sessions)}/{count} sessions connected")
    return sessions


async def close_sessions(sessions: list[Session]) -> None:
    await asyncio.gather(*(s.stop() for s in sessions), return_exceptions=True)


def freeze_heap() -> None:
    """Move what this process allocated so far out of the collector's reach (``gc.freeze``):
    with a thousand sessions a full collection here pauses the loop that timestamps
    arrivals for tens of milliseconds, which is the harness's cost, not the server's."""
    gc.collect()
    gc.freeze()


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 10 ms until true; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done within {timeout}s")
        await asyncio.sleep(0.01)


def reactor_stats(base_url: str) -> dict[str, int]:
    """The server's Reactor counters via the admin-only query ``testapp/bench:reactor_stats``."""
    request = urllib.request.Request(
        f"{base_url}/api/run/testapp/bench/reactor_stats", data=b'{"args": {}}',
        headers={"Content-Type": "application/json", "Authorization": f"Convex {ADMIN_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    if reply.get("status") != "success":
        raise RuntimeError(f"reactor_stats failed: {reply}")
    return {k: int(v) for k, v in reply["value"].items()}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in ("rounds", "executions", "changes")}


def server_pid(server: AsgiServer) -> int:
    """The pid of the process running the app: the server's own (uvicorn, daphne), or its one
    worker (granian spawns one; found by its parent, after start-up)."""
    proc = server._proc  # the servers harness keeps its child private; benchmarks only read it
    assert proc is not None, "the server is not running"
    if server._server != "granian":
        return proc.pid
    workers = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()
               and _parent(int(entry)) == proc.pid]
    assert len(workers) == 1, f"granian should run one worker, found {workers}"
    return workers[0]


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(db_url: str) -> int:
    """The pid of the (local) Postgres server process: the parent of any backend."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert backend is not None
    with open(f"/proc/{backend[0]}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[1])


def server_tree_cpu_seconds(pid: int) -> float:
    """CPU a server and all its children have used, the exited ones included (their time is
    added to the parent's ``cutime``/``cstime`` when it reaps them): for Postgres, every
    backend, the LISTEN and round connections of each server process among them."""
    def fields(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as stat:
            return stat.read().rpartition(")")[2].split()

    ticks = sum(int(x) for x in fields(pid)[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                child = fields(int(entry))
            except OSError:
                continue  # exited meanwhile: now in the parent's cutime
            if int(child[1]) == pid:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` in /proc/<pid>/status)."""
    for line in open(f"/proc/{pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def steady_rss(pid: int, samples: int = 5, every: float = 0.4) -> int:
    """A process's resident set size once quiet: the median of ``samples`` readings."""
    readings = []
    for _ in range(samples):
        time.sleep(every)
        readings.append(rss_bytes(pid))
    return sorted(readings)[len(readings) // 2]


GC_OBJECTS = re.compile(r"^reactive-gcobjects ([0-9]+)$", re.MULTILINE)


def with_gc_probe(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``bench/gcprobe`` first on ``PYTHONPATH``, for a server to report its
    full collections and, on SIGUSR2, the objects its collector tracks."""
    path = os.pathsep.join(filter(None, [str(ROOT / "bench" / "gcprobe"),
                                         os.environ.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": path}


def tracked_objects(server: AsgiServer, pid: int, timeout: float = 60.0) -> int:
    """How many objects the garbage collector of a server started ``with_gc_probe`` tracks,
    after a full collection (asked by SIGUSR2, read back from the server's log)."""
    before = len(GC_OBJECTS.findall(server.log_path.read_text()))
    os.kill(pid, signal.SIGUSR2)
    if not poll(lambda: len(GC_OBJECTS.findall(server.log_path.read_text())) > before,
                timeout, 0.1):
        raise TimeoutError(f"the server did not report its objects within {timeout} s; is "
                           "bench/gcprobe on its PYTHONPATH (with_gc_probe)?")
    return int(GC_OBJECTS.findall(server.log_path.read_text())[before])


def poll(condition: Callable[[], Any], timeout: float, every: float = 0.25) -> bool:
    """Whether ``condition`` became true within ``timeout`` seconds (checked every ``every``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class Writer:
    """A psycopg connection in autocommit: each ``insert`` is one plain commit, and the time
    right after it returns is that write's commit time."""

    def __init__(self, db_url: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)

    def insert(self, channel: str, body: str) -> float:
        self.conn.execute("INSERT INTO testapp_message (channel, body) VALUES (%s, %s)",
                          (channel, body))
        return time.perf_counter()

    def close(self) -> None:
        self.conn.close()


def seed_messages(db_url: str, channels: list[str], per_channel: int) -> None:
    """``per_channel`` messages in each channel, in one statement (one change-log batch)."""
    if per_channel <= 0:
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO testapp_message (channel, body) "
            "SELECT c, 'seed ' || n FROM unnest(%s::text[]) c, generate_series(1, %s) n",
            (channels, per_channel),
        )


def paced(rate: float, seconds: float, stop: threading.Event | None = None) -> Iterable[int]:
    """Yield 0, 1, 2... on a fixed schedule of ``rate`` per second for ``seconds`` (open loop:
    a slow step does not delay the schedule, later steps run late instead)."""
    interval = 1.0 / rate
    began = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - began < seconds and not (stop and stop.is_set()):
        due = began + n * interval
        if due > now:
            time.sleep(due - now)
        yield n
        n += 1


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    return {f"p{p}_ms" if p != 100 else "max_ms": round(percentile(seconds, p) * 1000, 2)
            for p in (50, 90, 99, 100)}
