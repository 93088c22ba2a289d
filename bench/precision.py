"""Precision and dedup of live queries: re-runs per write, executions per shared query.

Precision: ``--channels`` channels, one subscription each (``--sessions`` sessions holding an
equal share). ``--writes`` writes to random subscribed channels, one at a time (each waits for
its push): the server's executions per write should be 1, and no other subscription is sent
anything. Then ``--writes`` writes to channels nobody subscribes to: 0 executions, 0 pushes.

Dedup: ``--dedup-sessions`` sessions all subscribe to ONE channel; ``--dedup-writes`` writes,
each waiting until every session has it: 1 execution per write (per round) however many
sessions share the query. The server's counts come from its Reactor (``reactor_stats``).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections import defaultdict
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
    wait_until,
)


class Seen:
    """Every QueryUpdated that shows a write ``w<n>``: who got which write, and when."""

    def __init__(self) -> None:
        self.arrivals: dict[int, list[float]] = defaultdict(list)
        self.updates = 0
        self._newest: dict[tuple[int, int], int] = {}

    def on_update(self, session: Session, query_id: int, value: Any, arrived: float) -> None:
        self.updates += 1
        key = (id(session), query_id)
        newest = self._newest.get(key, -1)
        ids = [int(m["body"][1:]) for m in value if m["body"].startswith("w")]
        for n in ids:
            if n > newest:
                self.arrivals[n].append(arrived)
        self._newest[key] = max([newest, *ids])


async def settle(base_url: str, before: dict[str, int], changes: int, timeout: float = 30
                 ) -> dict[str, int]:
    """Poll the Reactor until it has read ``changes`` more change-log rows; its counts then."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while True:
        now = await loop.run_in_executor(None, reactor_stats, base_url)
        if now["changes"] - before["changes"] >= changes or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)


async def precision(options: argparse.Namespace, base_url: str, writer: Writer
                    ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    prefix = uuid.uuid4().hex[:8]
    channels = [f"{prefix}-{i}" for i in range(options.channels)]
    seen = Seen()
    log(f"precision: {options.channels} channels over {options.sessions} sessions")
    sessions = await open_sessions(base_url, options.sessions, seen.on_update)
    share = -(-options.channels // options.sessions)
    for i, session in enumerate(sessions):
        mine = channels[i * share:(i + 1) * share]
        await session.subscribe_many(CHANNEL_QUERY, [{"channel": c} for c in mine])
    await wait_until(lambda: sum(len(s.results) for s in sessions) == len(channels), 120,
                     "initial results")
    await asyncio.sleep(0.5)  # let the subscription rounds finish before counting
    seen.updates = 0
    before = await loop.run_in_executor(None, reactor_stats, base_url)
    for n in range(options.writes):
        await loop.run_in_executor(None, writer.insert, random.choice(channels), f"w{n}")
        await wait_until(lambda n=n: bool(seen.arrivals.get(n)), 30, f"push of write {n}")
    after = await settle(base_url, before, options.writes)
    affected = delta(after, before)
    affected_pushes, seen.updates = seen.updates, 0

    for n in range(options.writes):
        await loop.run_in_executor(None, writer.insert, f"{prefix}-nobody-{n}", f"x{n}")
    later = await settle(base_url, after, options.writes)
    await asyncio.sleep(0.5)  # a push, if any were (wrongly) sent, would arrive by now
    unaffected = delta(later, after)
    failures = [f for s in sessions for f in s.failures]
    await close_sessions(sessions)
    return {
        "channels": options.channels, "sessions": options.sessions,
        "affected": {"writes": options.writes, **affected,
                     "executions_per_write": round(affected["executions"] / options.writes, 3),
                     "pushes": affected_pushes,
                     "spurious_pushes": affected_pushes - options.writes},
        "unaffected": {"writes": options.writes, **unaffected,
                       "executions_per_write": round(unaffected["executions"] / options.writes,
                                                     3),
                       "pushes": seen.updates},
        "client_failures": failures[:5],
    }


async def dedup(options: argparse.Namespace, base_url: str, writer: Writer) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    channel = f"shared-{uuid.uuid4().hex[:8]}"
    seen = Seen()
    count = options.dedup_sessions
    log(f"dedup: {count} sessions on one query")
    sessions = await open_sessions(base_url, count, seen.on_update)
    before_subscribe = await loop.run_in_executor(None, reactor_stats, base_url)
    for session in sessions:
        await session.subscribe_many(CHANNEL_QUERY, [{"channel": channel}])
    await wait_until(lambda: all(s.results for s in sessions), 120, "initial results")
    await asyncio.sleep(0.5)
    before = await loop.run_in_executor(None, reactor_stats, base_url)
    subscribe = delta(before, before_subscribe)
    fanout, each = [], []
    for n in range(options.dedup_writes):
        committed = await loop.run_in_executor(None, writer.insert, channel, f"w{n}")
        await wait_until(lambda n=n: len(seen.arrivals.get(n, ())) >= count, 30,
                         f"write {n} at every session")
        fanout.append(max(seen.arrivals[n]) - committed)
        each += [t - committed for t in seen.arrivals[n]]
    after = await settle(base_url, before, options.dedup_writes)
    server = delta(after, before)
    failures = [f for s in sessions for f in s.failures]
    await close_sessions(sessions)
    return {
        "sessions": count, "writes": options.dedup_writes,
        "subscribe_executions": subscribe["executions"], **server,
        "executions_per_write": round(server["executions"] / options.dedup_writes, 3),
        "executions_per_round": round(server["executions"] / max(1, server["rounds"]), 3),
        "push_all_sessions": latency_summary(fanout),
        "push_each_session": latency_summary(each),
        "client_failures": failures[:5],
    }


async def measure(options: argparse.Namespace, db_url: str, base_url: str) -> dict[str, Any]:
    writer = Writer(db_url)
    try:
        result: dict[str, Any] = {"benchmark": "precision"}
        result["precision"] = await precision(options, base_url, writer)
        result["dedup"] = await dedup(options, base_url, writer)
    finally:
        writer.close()
    p, d = result["precision"], result["dedup"]
    result["meets_aim"] = (
        p["affected"]["executions_per_write"] == 1 and p["affected"]["spurious_pushes"] == 0
        and p["unaffected"]["executions"] == 0 and p["unaffected"]["pushes"] == 0
        and d["executions_per_write"] == 1 and d["subscribe_executions"] == 1
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100,
                        help="sessions holding the channel subscriptions (an equal share each)")
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--dedup-sessions", type=int, default=1000)
    parser.add_argument("--dedup-writes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    random.seed(options.seed)
    with database() as db_url, live_server(db_url) as server:
        result = asyncio.run(measure(options, db_url, server.url))
    emit(result)


if __name__ == "__main__":
    main()
