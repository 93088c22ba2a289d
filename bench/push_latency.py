"""Commit → client push latency of live queries, against the floor of the same machine.

``--sessions`` websocket sessions each subscribe to one channel's messages
(``testapp/bench:channel_messages``); a writer thread commits plain INSERTs (its own psycopg
connection, autocommit) into ``--active`` of those channels at ``--rate`` per second. Latency:
from the moment the commit returned to the arrival of the Transition that shows the row, at
every subscribed session. Writer and sessions share this process and its clock.

The floor, interleaved with the writes so that both see the same noise: a commit that NOTIFYs
on one connection → a LISTENing connection in this process receives it → sends it over a
local websocket to an echo server (also here) → the echo arrives. Prints one JSON line;
``ratio_p99`` is push p99 / floor p99, and the aim is push p99 <= 2 x floor p99 + 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import websockets
from _common import database, emit, live_server, log
from _live import (
    CHANNEL_QUERY,
    Session,
    Writer,
    close_sessions,
    cpu_seconds,
    delta,
    freeze_heap,
    latency_summary,
    open_sessions,
    paced,
    reactor_stats,
    server_pid,
    wait_until,
)

FLOOR_CHANNEL = "bench_floor"
PHASES = ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send")


class Floor:
    """NOTIFY round trip plus websocket echo, all timed in this process."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.notified: dict[int, float] = {}
        self.echoed: dict[int, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, "
                         "payload text NOT NULL)")
        self.server = await websockets.serve(self._echo, "127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.ws = await websockets.connect(f"ws://127.0.0.1:{port}")
        self.listen = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
        await self.listen.execute(f"LISTEN {FLOOR_CHANNEL}")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._on_notify()), loop.create_task(self._on_echo())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.ws.close()
        self.server.close()
        await self.listen.close()

    @staticmethod
    async def _echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def _on_notify(self) -> None:
        async for notify in self.listen.notifies():
            self.notified[int(notify.payload)] = time.perf_counter()
            await self.ws.send(notify.payload)

    async def _on_echo(self) -> None:
        async for message in self.ws:
            self.echoed[int(message)] = time.perf_counter()


class FloorWriter:
    """Commits an INSERT plus NOTIFY (the shape of a captured write) on its own connection."""

    def __init__(self, db_url: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)

    def write(self, n: int) -> float:
        with self.conn.transaction():
            self.conn.execute("INSERT INTO bench_floor (payload) VALUES (%s)", (str(n),))
            self.conn.execute("SELECT pg_notify(%s, %s)", (FLOOR_CHANNEL, str(n)))
        return time.perf_counter()

    def close(self) -> None:
        self.conn.close()


class Workload:
    """Sessions subscribed to channels, and what each saw of the writes ``w<n>``."""

    def __init__(self, prefix: str, sessions: int, channels: int, active: int) -> None:
        self.channels = [f"{prefix}-{i}" for i in range(channels)]
        self.active = self.channels[:active]
        self.subscribers: dict[str, int] = defaultdict(int)
        for i in range(sessions):
            self.subscribers[self.channels[i % channels]] += 1
        self.arrivals: dict[int, list[float]] = defaultdict(list)
        self._newest: dict[tuple[int, int], int] = {}  # (session, query) -> newest write seen

    def on_update(self, session: Session, query_id: int, value: Any, arrived: float) -> None:
        key = (id(session), query_id)
        newest = self._newest.get(key, -1)
        for message in value:
            body = message["body"]
            if body.startswith("w"):
                n = int(body[1:])
                if n > newest:
                    self.arrivals[n].append(arrived)
        self._newest[key] = max([newest, *(int(m["body"][1:]) for m in value
                                           if m["body"].startswith("w"))])


def write_loop(workload: Workload, db_url: str, rate: float, seconds: float, first: int,
               commits: dict[int, tuple[str, float]], floor_commits: dict[int, float]) -> None:
    """Alternate one captured write and one floor write, each at ``rate`` per second."""
    writer, floor = Writer(db_url), FloorWriter(db_url)
    try:
        for step in paced(2 * rate, seconds):
            n = first + step // 2
            if step % 2 == 0:
                channel = workload.active[n % len(workload.active)]
                commits[n] = (channel, writer.insert(channel, f"w{n}"))
            else:
                floor_commits[n] = floor.write(n)
    finally:
        writer.close()
        floor.close()


async def measure(options: argparse.Namespace, db_url: str, base_url: str, pid: int
                  ) -> dict[str, Any]:
    workload = Workload(uuid.uuid4().hex[:8], options.sessions, options.channels, options.active)
    log(f"opening {options.sessions} sessions")
    sessions = await open_sessions(base_url, options.sessions, workload.on_update)
    for i, session in enumerate(sessions):
        await session.subscribe_many(CHANNEL_QUERY,
                                     [{"channel": workload.channels[i % options.channels]}])
    await wait_until(lambda: all(s.results for s in sessions), 120, "initial results")
    log("all sessions have their first result")
    floor = Floor(db_url)
    await floor.start()
    freeze_heap()

    commits: dict[int, tuple[str, float]] = {}
    floor_commits: dict[int, float] = {}
    loop = asyncio.get_running_loop()
    log("warming up")
    await loop.run_in_executor(None, write_loop, workload, db_url, options.rate,
                               min(3.0, options.duration), 0, {}, {})
    await asyncio.sleep(1)  # let the warm-up's pushes land before counting anything
    first = 1_000_000
    before = await loop.run_in_executor(None, reactor_stats, base_url)
    cpu_before = cpu_seconds(pid)
    log(f"measuring for {options.duration}s at {options.rate} writes/s (+ as many floor writes)")
    await loop.run_in_executor(None, write_loop, workload, db_url, options.rate,
                               options.duration, first, commits, floor_commits)

    def everything_arrived() -> bool:
        pushes = all(len(workload.arrivals.get(n, ())) >= workload.subscribers[channel]
                     for n, (channel, _) in commits.items())
        return pushes and len(floor.echoed) >= len(floor_commits)

    try:
        await wait_until(everything_arrived, options.grace, "pushes after the last write")
    except TimeoutError as exc:
        log(str(exc))
    cpu = cpu_seconds(pid) - cpu_before
    after = await loop.run_in_executor(None, reactor_stats, base_url)
    await floor.stop()
    failures = [f for s in sessions for f in s.failures]
    await close_sessions(sessions)

    push = [t - commits[n][1] for n, times in workload.arrivals.items() if n in commits
            for t in times]
    expected = sum(workload.subscribers[channel] for channel, _ in commits.values())
    floor_total = [floor.echoed[n] - c for n, c in floor_commits.items() if n in floor.echoed]
    floor_notify = [floor.notified[n] - c for n, c in floor_commits.items()
                    if n in floor.notified]
    push_ms, floor_ms = latency_summary(push), latency_summary(floor_total)
    # Fan-out: per write, when its LAST subscriber got it (writes every subscriber got).
    last = [max(times) - commits[n][1] for n, times in workload.arrivals.items()
            if n in commits and len(times) >= workload.subscribers[commits[n][0]]]
    aim_ms = 2 * floor_ms["p99_ms"] + 10
    server = delta(after, before)
    writes = len(commits)
    return {
        "benchmark": "push_latency", "per_message_deflate": not options.no_deflate,
        "sessions": options.sessions, "channels": options.channels, "active": options.active,
        "writes": writes, "rate": options.rate, "duration_s": options.duration,
        "push": {**push_ms, "deliveries": len(push), "expected": expected,
                 "missing": expected - len(push)},
        "last_arrival": latency_summary(last),
        "floor": {**floor_ms, "samples": len(floor_total), "missing":
                  len(floor_commits) - len(floor_total)},
        "floor_notify_only": latency_summary(floor_notify),
        "ratio_p50": round(push_ms["p50_ms"] / floor_ms["p50_ms"], 2) if push else None,
        "ratio_p99": round(push_ms["p99_ms"] / floor_ms["p99_ms"], 2) if push else None,
        "aim_p99_ms": round(aim_ms, 2),
        "meets_aim": bool(push) and push_ms["p99_ms"] <= aim_ms and expected == len(push),
        "server": {**server, "executions_per_write": round(server["executions"] / writes, 3),
                   "rounds_per_write": round(server["rounds"] / writes, 3),
                   "cpu_ms_per_write": round(cpu * 1000 / writes, 2),
                   "queries": after.get("queries"), "sessions": after.get("sessions"),
                   # where a round's time went, per round (microseconds; docs/internals)
                   "round_us": {p: round((after.get(f"{p}_us", 0) - before.get(f"{p}_us", 0))
                                         / max(server["rounds"], 1), 1) for p in PHASES}},
        "client_failures": failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=1000,
                        help="distinct channels; session i subscribes to channel i %% channels")
    parser.add_argument("--active", type=int, default=100, help="channels that get writes")
    parser.add_argument("--rate", type=float, default=50.0, help="captured writes per second")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds to wait for the last pushes")
    parser.add_argument("--no-deflate", action="store_true",
                        help="serve with uvicorn --ws-per-message-deflate false")
    options = parser.parse_args()
    args = ("--ws-per-message-deflate", "false") if options.no_deflate else ()
    with database() as db_url, live_server(db_url, args=args) as server:
        result = asyncio.run(measure(options, db_url, server.url, server_pid(server)))
    emit(result)


if __name__ == "__main__":
    main()
