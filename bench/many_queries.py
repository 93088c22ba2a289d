"""One write that invalidates many distinct queries: the round that re-runs them, by pool size.

``--sockets`` sessions each subscribe ``--queries`` distinct channel queries
(``testapp/bench:channel_messages``, every one with its own channel: sockets x queries distinct
queries, 1,000 by default). Each measured write is ONE commit inserting a row into every
channel, so one round must re-run all of them. For each ``--pools`` value a fresh server runs
with ``REACTOR_RERUN_CONNECTIONS`` = that value (1: every re-run on the round's connection;
more: re-runs spread over connections that import the round's snapshot). Reports per write
the round's time by phase (from the server's Reactor counters) and commit -> last arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from _common import database, emit, log
from _live import (
    CHANNEL_QUERY,
    Session,
    close_sessions,
    freeze_heap,
    open_sessions,
    reactor_stats,
    seed_messages,
    wait_until,
)

from tests.support.servers import AsgiServer

PHASES = ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send")


def write_all(db_url: str, channels: list[str], tag: str) -> float:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO testapp_message (channel, body) "
                     "SELECT c, %s FROM unnest(%s::text[]) c", (tag, channels))
        return time.perf_counter()


async def one_pool(pool: int, db_url: str, options: argparse.Namespace) -> dict[str, Any]:
    server = AsgiServer({"DATABASE_URL": db_url, "REACTIVE_RERUN_CONNECTIONS": str(pool)})
    server.start()
    loop = asyncio.get_running_loop()
    try:
        prefix = uuid.uuid4().hex[:8]
        total = options.sockets * options.queries
        channels = [f"{prefix}-{i}" for i in range(total)]
        seed_messages(db_url, channels, 2)
        arrivals: dict[str, list[float]] = {}

        def on_update(session: Session, query_id: int, value: Any, arrived: float) -> None:
            if value:
                arrivals.setdefault(value[0]["body"], []).append(arrived)

        sessions = await open_sessions(server.url, options.sockets, on_update)
        for i, session in enumerate(sessions):
            mine = channels[i * options.queries:(i + 1) * options.queries]
            await session.subscribe_many(CHANNEL_QUERY, [{"channel": c} for c in mine])
        await wait_until(lambda: sum(len(s.results) for s in sessions) >= total, 180,
                         "first results")
        freeze_heap()
        rounds, lasts = [], []
        for n in range(options.writes + 1):  # the first write warms up
            tag = f"{prefix}-w{n}"
            before = await loop.run_in_executor(None, reactor_stats, server.url)
            committed = await loop.run_in_executor(None, write_all, db_url, channels, tag)
            await wait_until(lambda tag=tag: len(arrivals.get(tag, ())) >= total, 60,
                             f"all {total} pushes of write {n}")
            await asyncio.sleep(0.2)  # the round's counters are read after it is done
            after = await loop.run_in_executor(None, reactor_stats, server.url)
            if n:
                lasts.append(max(arrivals[tag]) - committed)
                rounds.append({p: (after.get(f"{p}_us", 0) - before.get(f"{p}_us", 0)) / 1000
                               for p in PHASES}
                              | {"rounds": after["rounds"] - before["rounds"],
                                 "executions": after["executions"] - before["executions"]})
        failures = [f for s in sessions for f in s.failures]
        await close_sessions(sessions)
    finally:
        server.stop()
    return {
        "rerun_connections": pool, "distinct_queries": total,
        "commit_to_last_arrival_ms": {"median": round(statistics.median(lasts) * 1000, 1),
                                      "max": round(max(lasts) * 1000, 1)},
        "round_ms_median": {k: round(statistics.median(r[k] for r in rounds), 1)
                            for k in (*PHASES, "rounds", "executions")},
        "client_failures": failures[:5],
    }


async def measure(options: argparse.Namespace, db_url: str) -> dict[str, Any]:
    results = []
    for pool in options.pools:
        log(f"REACTOR_RERUN_CONNECTIONS={pool}")
        results.append(await one_pool(pool, db_url, options))
    base = results[0]["round_ms_median"]["rerun"]
    for r in results:
        r["rerun_speedup"] = round(base / r["round_ms_median"]["rerun"], 2)
    return {"benchmark": "many_queries", "writes": options.writes, "pools": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pools", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--queries", type=int, default=20, help="distinct queries per socket")
    parser.add_argument("--writes", type=int, default=5, help="measured writes per pool size")
    options = parser.parse_args()
    with database() as db_url:
        result = asyncio.run(measure(options, db_url))
    emit(result)


if __name__ == "__main__":
    main()
