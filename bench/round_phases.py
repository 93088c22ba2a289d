"""One Reactor round, timed in this process: where a round's time goes, without a server.

A Reactor of this process (no uvicorn, no sockets) holds ``--queries`` live queries
(``testapp/bench:channel_messages``, one channel each) for fake sessions that only keep what
they are sent. Then ``--rounds`` times: a plain INSERT into one of those channels commits on a
separate connection, and one ``Reactor.run_round`` takes it in (one re-run, one Transition).
Interleaved with the rounds, on the round's own connection, a bare ``SELECT 1`` gives the
round trip of this machine at that moment. Prints one JSON line: the round's wall time
(p50/p90), the CPU time of the round's thread (p50: Python and system calls, less sensitive to
a busy machine than wall time), its phases (mean per round, ``Reactor.phases_us``), the
statements it sent (counted on the connection: those through Django's cursors, plus psycopg's
own ``BEGIN`` and ``COMMIT``; each is one round trip) and the round trip p50.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _common import database, emit, log, percentile


class Handle:
    """A session that keeps a count of what it is sent."""

    def __init__(self) -> None:
        self.messages = 0

    def deliver(self, messages: list[Any]) -> None:
        self.messages += len(messages)


def count_statements(connection: Any) -> list[int]:
    """A counter of the statements ``connection`` sends from now on (a one-item list)."""
    from psycopg import _connection_base

    count = [0]

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    connection.execute_wrappers.append(wrapper)
    command = _connection_base.BaseConnection._exec_command  # BEGIN, COMMIT

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return command(self, *args, **kwargs)

    _connection_base.BaseConnection._exec_command = counted  # type: ignore[method-assign]
    return count


def measure(options: argparse.Namespace, db_url: str) -> dict[str, Any]:
    import psycopg
    from django.db import connection

    from reactive.live.inbox import AddRequest, QuerySetChanged
    from reactive.live.reactor import Reactor

    reactor = Reactor(prune=False)
    handles = [Handle() for _ in range(options.queries)]
    adds = [QuerySetChanged(h, 1, (AddRequest(1, "testapp/bench:channel_messages",
                                              {"channel": f"round-{i}"}, None),), ())
            for i, h in enumerate(handles)]

    def step(events: list[Any]) -> None:
        for handle, messages in reactor.run_round(events):
            handle.deliver(messages)

    step(adds)
    statements = count_statements(connection)
    writer = psycopg.connect(db_url, autocommit=True)

    def write(n: int) -> None:
        writer.execute("INSERT INTO testapp_message (channel, body) VALUES (%s, %s)",
                       (f"round-{n % options.queries}", f"w{n}"))

    for n in range(options.warmup):
        write(n)
        step([])
    before = dict(reactor.phases_us)
    executions = reactor.stats["executions"]
    rounds, trips, cpu = [], [], []
    sent = 0
    log(f"timing {options.rounds} rounds")
    for n in range(options.rounds):
        write(n)
        started, thread_started, counted = (time.perf_counter(), time.thread_time(),
                                            statements[0])
        step([])
        rounds.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - thread_started)
        sent += statements[0] - counted
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        trips.append(time.perf_counter() - started)
    writer.close()
    phases = {p: round((reactor.phases_us[p] - before[p]) / options.rounds / 1000, 3)
              for p in before}
    return {
        "benchmark": "round_phases", "queries": options.queries, "rounds": options.rounds,
        "executions_per_round": (reactor.stats["executions"] - executions) / options.rounds,
        "round_p50_ms": round(percentile(rounds, 50) * 1000, 3),
        "round_p90_ms": round(percentile(rounds, 90) * 1000, 3),
        "round_cpu_p50_ms": round(percentile(cpu, 50) * 1000, 3),
        "statements_per_round": round(sent / options.rounds, 2),
        "round_trip_p50_ms": round(percentile(trips, 50) * 1000, 3),
        "round_in_round_trips": round(percentile(rounds, 50) / percentile(trips, 50), 1),
        "phases_ms": phases, "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=100, help="live queries held")
    parser.add_argument("--rounds", type=int, default=500, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=50)
    options = parser.parse_args()
    with database("reactive_bench_rounds") as db_url:
        os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "tests.settings"})
        import django

        django.setup()
        emit(measure(options, db_url))


if __name__ == "__main__":
    main()
