"""Prometheus metrics (``prometheus_client``): per-function calls, errors and latency from the
call listeners, mutation retries and conflicts from the transaction module's log records, and,
at scrape time, the change-log backlog, scheduler queue depth and the Reactors' counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connections
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reactive.functions import logs
from reactive.functions.registry import registry

KIND = {"query": "query", "mutation": "mutation", "action": "action"}

CALLS = Counter("reactive_function_calls", "Client-facing function calls, by outcome.",
                ["function", "kind", "outcome"])
LATENCY = Histogram("reactive_function_duration_seconds", "Function call duration.",
                    ["function", "kind"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                             5, 10, 30))
RETRIES = Counter("reactive_mutation_retries", "Mutation attempts that lost a race and ran "
                  "again.", ["function", "sqlstate"])
CONFLICTS = Counter("reactive_mutation_conflicts", "Mutations that failed after their last "
                    "attempt.", ["function", "sqlstate"])

# name -> callable returning {counter or gauge name: value}, registered by the Django glue
# (e.g. the Reactors of this process), read at scrape time.
Source = Callable[[], dict[str, float]]
_sources: dict[str, Source] = {}
_installed = threading.Event()


def record_call(record: logs.CallRecord) -> None:
    """The call listener: one call counted and timed (unknown functions are not labelled)."""
    try:
        kind = str(registry.get(record.function, internal=True).kind)
    except Exception:
        return
    CALLS.labels(record.function, kind, "success" if record.ok else "error").inc()
    LATENCY.labels(record.function, kind).observe(record.duration)


class RetryHandler(logging.Handler):
    """Counts ``mutation retry`` / ``mutation conflict`` records of
    ``reactive.functions.transaction`` (``function=%s attempt(s)=%d sqlstate=%s ...``)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) < 3:
            return
        if message.startswith("mutation retry "):
            RETRIES.labels(str(args[0]), str(args[2])).inc()
        elif message.startswith("mutation conflict "):
            CONFLICTS.labels(str(args[0]), str(args[2])).inc()


class DatabaseCollector(Collector):
    """Gauges read from Postgres when scraped: change-log rows, and jobs due but not started."""

    def describe(self) -> Iterator[Any]:
        # Without describe(), registering would call collect(): a query (and a connection left
        # open) at start-up.
        return iter(())

    def collect(self) -> Iterator[Any]:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT (SELECT count(*) FROM reactive_change), (SELECT count(*) FROM "
                    "reactive_job WHERE state = 'pending' AND due_at <= now()), "
                    "(SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0) FROM "
                    "reactive_job WHERE state = 'pending' AND due_at <= now())")
                backlog, due, oldest = cursor.fetchone()
        except Exception:  # a scrape must not fail because the database is down
            return
        yield GaugeMetricFamily("reactive_change_log_rows", "Rows in the change log.",
                                value=backlog)
        yield GaugeMetricFamily("reactive_scheduler_due_jobs", "Jobs due and not started.",
                                value=due)
        yield GaugeMetricFamily("reactive_scheduler_due_lag_seconds",
                                "How long the oldest due job has waited.", value=float(oldest))


class SourceCollector(Collector):
    """The registered sources' values: names ending in ``_total`` are counters."""

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        totals: dict[str, float] = {}
        for source in list(_sources.values()):
            for name, value in source().items():
                totals[name] = totals.get(name, 0) + value
        for name, value in sorted(totals.items()):
            if name.endswith("_total"):
                yield CounterMetricFamily(name.removesuffix("_total"), name, value=value)
            else:
                yield GaugeMetricFamily(name, name, value=value)


def add_source(name: str, source: Source) -> None:
    """Report ``source()``'s values (summed over sources) at every scrape."""
    _sources[name] = source


def install() -> None:
    """Start counting (idempotent; the app does this at start-up)."""
    if _installed.is_set():
        return
    _installed.set()
    logs.add_listener(record_call)
    logging.getLogger("reactive.functions.transaction").addHandler(RetryHandler())
    REGISTRY.register(DatabaseCollector())
    REGISTRY.register(SourceCollector())
