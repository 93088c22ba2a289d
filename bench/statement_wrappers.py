"""What reactive's ``execute_wrapper``s cost each SQL statement, in this process.

Every connection gets three from ``reactive.apps``: the action write guard, the row counter
(metrics) and the query clock (``QUERY_STATEMENT_TIMEOUT`` in all). Against a real database the
difference drowns in the round trip's noise (about 2 us either way on a local ``SELECT 1``), so
each wrapper is timed by calling it directly, as Django does, with an ``execute`` that returns
at once: ``--calls`` calls, ``--rounds`` times, in the state where it does the most (inside a
running call, and inside a query's clock: the clock's check then reads the time; outside a
query it only reads a context variable); the baseline, in the same rounds, is a wrapper that
only passes the statement on. For scale, ``SELECT 1`` round trips through Django's cursor with
no wrappers. Prints one JSON line: nanoseconds per call of each wrapper and of the baseline
(median of the rounds), their sum, and the round trip in microseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import database, emit, log


class _Cursor:
    rowcount = 1  # a statement that returned a row: the row counter adds it


def ns_per_call(wrapper: Callable[..., Any], calls: int) -> float:
    context = {"cursor": _Cursor()}

    def execute(sql: str, params: Any, many: bool, context: Any) -> None:
        return None

    started = time.perf_counter_ns()
    for _ in range(calls):
        wrapper(execute, "SELECT 1", None, False, context)
    return (time.perf_counter_ns() - started) / calls


def passthrough(execute: Callable[..., Any], sql: str, params: Any, many: bool,
                context: Any) -> Any:
    return execute(sql, params, many, context)


def round_trip_us(connection: Any, statements: int) -> float:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(statements):
            cursor.execute("SELECT 1")
        return (time.perf_counter() - started) / statements * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000, help="per timing of a wrapper")
    parser.add_argument("--rounds", type=int, default=7, help="timings of each")
    parser.add_argument("--statements", type=int, default=2000, help="round trips per timing")
    options = parser.parse_args()
    with database() as db_url:
        os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "tests.settings"})
        import django

        django.setup()
        from django.db import connection

        from reactive.functions.current import running
        from reactive.functions.snapshots import query_clock

        connection.ensure_connection()
        ours = list(connection.execute_wrappers)
        assert len(ours) == 3, f"expected reactive's three wrappers, found {ours}"
        timed = [passthrough, *ours]
        ns: dict[str, list[float]] = {w.__name__: [] for w in timed}
        trips: list[float] = []
        log(f"{options.rounds} rounds of {options.calls} calls of each wrapper")
        connection.execute_wrappers[:] = []
        for _ in range(options.rounds):
            trips.append(round_trip_us(connection, options.statements))
            for wrapper in timed:
                with running("bench:statement_wrappers", {}), \
                        query_clock("bench:statement_wrappers"):
                    ns[wrapper.__name__].append(ns_per_call(wrapper, options.calls))
        connection.execute_wrappers[:] = ours
    each = {name: round(statistics.median(values), 1) for name, values in ns.items()}
    base = each.pop("passthrough")
    trip = statistics.median(trips)
    emit({"benchmark": "statement_wrappers", "calls": options.calls, "rounds": options.rounds,
          "ns_per_statement": each, "passthrough_ns": base,
          "ratio_to_passthrough": {name: round(v / base, 2) for name, v in each.items()},
          "all_ns": round(sum(each.values()), 1), "select_1_round_trip_us": round(trip, 2),
          "all_share_of_round_trip": round(sum(each.values()) / 1000 / trip, 4)})


if __name__ == "__main__":
    main()
