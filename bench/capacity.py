"""Subscriptions one server process holds, and the memory each costs.

Opens ``--sockets`` sync sessions with no queries, then subscribes ``--queries`` distinct
channel queries on each (``--sockets`` x ``--queries`` subscriptions, every one a distinct
query with its own result), waits until every one has its first result, and reads the server
process's resident memory (``VmRSS``) at each step. Bytes per subscription are the growth from
"sockets open, no queries" to "all subscribed", so socket overhead is not counted in it (it is
reported apart). Finally a few writes check that the loaded server still pushes.
Prints one JSON line; the aim is >= 10,000 subscriptions at <= 4 KiB each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

from _common import database, emit, live_server, log
from _live import (
    CHANNEL_QUERY,
    Session,
    Writer,
    close_sessions,
    delta,
    latency_summary,
    open_sessions,
    reactor_stats,
    seed_messages,
    server_pid,
    steady_rss,
    wait_until,
)


async def measure(options: argparse.Namespace, db_url: str, base_url: str, pid: int
                  ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    prefix = uuid.uuid4().hex[:8]
    total = options.sockets * options.queries
    channels = [f"{prefix}-{i}" for i in range(total)]
    seed_messages(db_url, channels, options.messages)
    arrivals: dict[tuple[int, int], float] = {}

    def on_update(session: Session, query_id: int, value: Any, arrived: float) -> None:
        arrivals[(id(session), query_id)] = arrived

    # Warm the server's code paths (imports, parse caches, the Reactor) before the baseline.
    warm = await open_sessions(base_url, 1)
    await warm[0].subscribe_many(CHANNEL_QUERY, [{"channel": f"{prefix}-warm"}])
    await wait_until(lambda: bool(warm[0].results), 30, "warm-up result")
    await close_sessions(warm)
    rss_start = await asyncio.to_thread(steady_rss, pid)

    log(f"opening {options.sockets} sockets")
    sessions = await open_sessions(base_url, options.sockets, on_update)
    rss_sockets = await asyncio.to_thread(steady_rss, pid)

    log(f"subscribing {options.queries} queries on each ({total} in all)")
    began = time.perf_counter()
    for i, session in enumerate(sessions):
        mine = channels[i * options.queries:(i + 1) * options.queries]
        await session.subscribe_many(CHANNEL_QUERY, [{"channel": c} for c in mine])
    await wait_until(lambda: sum(len(s.results) for s in sessions) >= total, options.timeout,
                     "every subscription's first result")
    subscribe_s = time.perf_counter() - began
    rss_subscribed = await asyncio.to_thread(steady_rss, pid)
    stats = await loop.run_in_executor(None, reactor_stats, base_url)

    log("checking that pushes still flow")
    writer = Writer(db_url)
    latencies = []
    for n in range(options.writes):
        i = random.randrange(total)
        session, query_id = sessions[i // options.queries], i % options.queries
        key = (id(session), query_id)
        arrivals.pop(key, None)
        committed = await loop.run_in_executor(None, writer.insert, channels[i], f"w{n}")
        await wait_until(lambda key=key: key in arrivals, 30, f"push of write {n}")
        latencies.append(arrivals[key] - committed)
    writer.close()
    after = await loop.run_in_executor(None, reactor_stats, base_url)
    failures = [f for s in sessions for f in s.failures]
    held = sum(len(s.results) for s in sessions)
    await close_sessions(sessions)

    per_sub = (rss_subscribed - rss_sockets) / total
    return {
        "benchmark": "capacity", "per_message_deflate": not options.no_deflate,
        "sockets": options.sockets, "queries_per_socket": options.queries,
        "subscriptions": total, "held": held, "messages_per_channel": options.messages,
        "server_queries": stats["queries"], "server_sessions": stats["sessions"],
        "rss_start_mib": round(rss_start / 2**20, 1),
        "rss_sockets_mib": round(rss_sockets / 2**20, 1),
        "rss_subscribed_mib": round(rss_subscribed / 2**20, 1),
        "bytes_per_socket": round((rss_sockets - rss_start) / options.sockets),
        "bytes_per_subscription": round(per_sub),
        "subscribe_seconds": round(subscribe_s, 2),
        "subscriptions_per_second": round(total / subscribe_s, 1),
        "push_at_capacity": {**latency_summary(latencies), **delta(after, stats)},
        "meets_aim": held >= 10_000 and per_sub <= 4096 and not failures,
        "client_failures": failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50, help="distinct queries per socket")
    parser.add_argument("--messages", type=int, default=2,
                        help="messages already in each channel (result size)")
    parser.add_argument("--writes", type=int, default=50,
                        help="writes at capacity, to check that pushes still flow")
    parser.add_argument("--timeout", type=float, default=150.0,
                        help="seconds allowed for every subscription's first result")
    parser.add_argument("--no-deflate", action="store_true",
                        help="serve with uvicorn --ws-per-message-deflate false")
    options = parser.parse_args()
    args = ("--ws-per-message-deflate", "false") if options.no_deflate else ()
    with database() as db_url, live_server(db_url, args=args) as server:
        result = asyncio.run(measure(options, db_url, server.url, server_pid(server)))
    emit(result)


if __name__ == "__main__":
    main()
