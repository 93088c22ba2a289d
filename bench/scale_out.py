"""Scale-out: what extra server processes cost per write when none of their sessions can be
affected by it.

Starts ``max(--processes)`` uvicorn processes on one database. For each N in ``--processes``
(ascending), ``--sessions`` websocket sessions are spread over the first N processes: process 1
holds ``--hot`` sessions, each subscribed to one channel's messages
(``testapp/bench:channel_messages``, table ``testapp_message``), which a writer thread writes
at ``--rate`` commits/s (plain INSERTs, autocommit, a random hot channel each); the other
sessions subscribe to ``--cold-query`` (default ``testapp:list_notes``: another table) and sit
on processes 2..N (on process 1 when N = 1). Processes above N have never held a session, so
they have no Reactor and do not LISTEN.

Per N it reports server CPU per write (all N processes), Postgres CPU per write (the
postmaster and every backend, exited ones included), commit -> client latency at the hot
sessions, each process's Reactor counters (rounds, skipped wake-ups, log rows read) and where
the hot process's rounds spent their time, by phase. ``ratio_pg`` = Postgres CPU per write at
N / at N = 1 (aim: <= 1.5). Needs a local Postgres (reads /proc): the private one by default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import uuid
from typing import Any

from _common import database, emit, live_server, log
from _live import (
    CHANNEL_QUERY,
    Session,
    Writer,
    close_sessions,
    cpu_seconds,
    freeze_heap,
    latency_summary,
    open_sessions,
    paced,
    postmaster_pid,
    reactor_stats,
    server_pid,
    server_tree_cpu_seconds,
    wait_until,
)

PHASES = ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send")
COUNTERS = ("rounds", "skipped", "notifies", "changes", "executions")


class Hot:
    """The hot sessions' channels, the writes' commit times and the pushes' arrival times."""

    def __init__(self, count: int) -> None:
        prefix = uuid.uuid4().hex[:8]
        self.channels = [f"{prefix}-{i}" for i in range(count)]
        self.commits: dict[str, float] = {}  # body -> commit time
        self.latencies: list[float] = []
        self.newest: dict[str, str] = {}  # channel -> newest body a session was shown

    def on_update(self, session: Session, query_id: int, value: Any, arrived: float) -> None:
        if value:
            body = value[0]["body"]
            self.newest[session.channel] = body  # type: ignore[attr-defined]
            committed = self.commits.get(body)
            if committed is not None:
                self.latencies.append(arrived - committed)


def write(hot: Hot, db_url: str, rate: float, seconds: float, tag: str) -> int:
    writer = Writer(db_url)
    count = 0
    try:
        for n in paced(rate, seconds):
            body = f"{tag}{n}"
            hot.commits[body] = writer.insert(random.choice(hot.channels), body)
            count += 1
    finally:
        writer.close()
    return count


async def open_phase(n: int, urls: list[str], options: argparse.Namespace, hot: Hot
                     ) -> list[Session]:
    sessions = await open_sessions(urls[0], options.hot, hot.on_update)
    for session, channel in zip(sessions, hot.channels, strict=True):
        session.channel = channel  # type: ignore[attr-defined]
        await session.subscribe_many(CHANNEL_QUERY, [{"channel": channel}])
    cold_total = options.sessions - options.hot
    homes = urls[1:n] or urls[:1]
    for i, url in enumerate(homes):
        share = cold_total // len(homes) + (1 if i < cold_total % len(homes) else 0)
        cold = await open_sessions(url, share)
        for session in cold:
            await session.subscribe_many(options.cold_query, [{}])
        sessions += cold
    await wait_until(lambda: all(s.results for s in sessions), 180, "first results")
    return sessions


def stats_of(urls: list[str]) -> list[dict[str, int]]:
    return [reactor_stats(url) for url in urls]


async def phase(n: int, servers: list[Any], options: argparse.Namespace, db_url: str,
                pg_pid: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    urls, pids = [s.url for s in servers[:n]], [server_pid(s) for s in servers[:n]]
    hot = Hot(options.hot)
    log(f"N={n}: opening {options.sessions} sessions")
    sessions = await open_phase(n, urls, options, hot)
    freeze_heap()
    await loop.run_in_executor(None, write, hot, db_url, options.rate, 2.0, "warm")
    await asyncio.sleep(1)
    before = await loop.run_in_executor(None, stats_of, urls)
    server_before = sum(cpu_seconds(p) for p in pids)
    pg_before = server_tree_cpu_seconds(pg_pid)
    hot.latencies.clear()
    log(f"N={n}: measuring {options.duration}s at {options.rate} writes/s")
    writes = await loop.run_in_executor(None, write, hot, db_url, options.rate,
                                        options.duration, f"n{n}w")
    last = f"n{n}w{writes - 1}"
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: last in hot.newest.values(), 10, "the last write's push")
    server_cpu = sum(cpu_seconds(p) for p in pids) - server_before
    pg_cpu = server_tree_cpu_seconds(pg_pid) - pg_before
    after = await loop.run_in_executor(None, stats_of, urls)
    stale = await loop.run_in_executor(None, stale_channels, db_url, hot)
    failures = [f for s in sessions for f in s.failures]
    await close_sessions(sessions)
    per_process = [{k: a.get(k, 0) - b.get(k, 0) for k in COUNTERS}
                   for a, b in zip(after, before, strict=True)]
    rounds = max(per_process[0]["rounds"], 1)
    return {
        "processes": n, "writes": writes,
        "server_cpu_ms_per_write": round(server_cpu * 1000 / writes, 3),
        "postgres_cpu_ms_per_write": round(pg_cpu * 1000 / writes, 3),
        "push": {**latency_summary(hot.latencies), "samples": len(hot.latencies)},
        "reactors": per_process,
        "hot_round_us": {p: round((after[0].get(f"{p}_us", 0) - before[0].get(f"{p}_us", 0))
                                  / rounds, 1) for p in PHASES},
        "stale_sessions": stale, "client_failures": failures[:5],
    }


def stale_channels(db_url: str, hot: Hot) -> int:
    """Hot sessions whose newest shown body is not their channel's newest in the database."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (channel) channel, body FROM testapp_message "
            "WHERE channel = ANY(%s) ORDER BY channel, id DESC", (hot.channels,)).fetchall()
    return sum(1 for channel, body in rows if hot.newest.get(channel) != body)


async def measure(options: argparse.Namespace, db_url: str, servers: list[Any]
                  ) -> dict[str, Any]:
    pg_pid = postmaster_pid(db_url)
    results = [await phase(n, servers, options, db_url, pg_pid) for n in options.processes]
    base = results[0]
    for r in results:
        r["ratio_server"] = round(r["server_cpu_ms_per_write"]
                                  / base["server_cpu_ms_per_write"], 2)
        r["ratio_pg"] = round(r["postgres_cpu_ms_per_write"]
                              / base["postgres_cpu_ms_per_write"], 2)
    return {
        "benchmark": "scale_out", "sessions": options.sessions, "hot": options.hot,
        "cold_query": options.cold_query, "rate": options.rate,
        "duration_s": options.duration, "phases": results,
        "meets_aim": all(r["ratio_pg"] <= 1.5 and not r["stale_sessions"]
                         and not r["client_failures"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--hot", type=int, default=100,
                        help="sessions on process 1 whose channels get the writes")
    parser.add_argument("--cold-query", default="testapp:list_notes",
                        help="what the other sessions subscribe to")
    parser.add_argument("--rate", type=float, default=50.0, help="commits per second")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per N")
    options = parser.parse_args()
    options.processes = sorted(set(options.processes))
    with database() as db_url, contextlib.ExitStack() as stack:
        servers = [stack.enter_context(live_server(db_url))
                   for _ in range(max(options.processes))]
        result = asyncio.run(measure(options, db_url, servers))
    emit(result)


if __name__ == "__main__":
    main()
