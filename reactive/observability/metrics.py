"""Prometheus metrics (``prometheus_client``) counted in each process: per-function calls,
errors and latency from the call listeners, mutation retries and conflicts from the
transactions' conflict listener, the Reactors' rounds from their round listener, and the
process's garbage-collection pauses from ``gc.callbacks``."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from reactive.functions import logs, transaction
from reactive.functions.registry import registry
from reactive.observability.collectors import DatabaseCollector

CALLS = Counter("reactive_function_calls", "Client-facing and scheduled function calls, by "
                "outcome.", ["function", "kind", "outcome"])
LATENCY = Histogram("reactive_function_duration_seconds", "Function call duration.",
                    ["function", "kind"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                             5, 10, 30))
RETRIES = Counter("reactive_mutation_retries", "Mutation attempts that lost a race and ran "
                  "again.", ["function", "sqlstate"])
ROWS_READ = Counter("reactive_function_rows_read", "Rows returned to calls by reading SQL "
                    "statements (every attempt of a retried mutation).", ["function", "kind"])
ROWS_WRITTEN = Counter("reactive_function_rows_written", "Rows inserted, updated or deleted "
                       "by calls' SQL statements (every attempt).", ["function", "kind"])
CONFLICTS = Counter("reactive_mutation_conflicts", "Mutations that failed after their last "
                    "attempt.", ["function", "sqlstate"])

ROUND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1, 2.5, 5)
ROUNDS = Counter("reactive_reactor_rounds", "Reactor rounds.")
ROUND_PHASES = Histogram("reactive_reactor_round_phase_seconds", "Time a Reactor round spent "
                         "in each phase (inbox, begin, log, match, rerun, commit, encode, send).",
                         ["phase"], buckets=ROUND_BUCKETS)
ROUND_TIME = Histogram("reactive_reactor_round_seconds", "Reactor round duration, all phases.",
                       buckets=ROUND_BUCKETS)
PUSH_LAG = Histogram("reactive_reactor_push_lag_seconds", "From the NOTIFY of a commit that "
                     "woke a round to its messages handed to the sessions.",
                     buckets=ROUND_BUCKETS)
RERUNS = Histogram("reactive_reactor_reruns_per_round", "Distinct queries (re-)run per round.",
                   buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000))
QUERY_RUNS = Counter("reactive_reactor_query_runs", "Queries (re-)run by Reactors.")
CHANGES = Counter("reactive_reactor_changes", "Change-log rows read by Reactors.")
# livesum: in multiprocess mode, the sum over the live processes.
SESSIONS = Gauge("reactive_reactor_sessions", "Sync sessions held by Reactors.",
                 multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("reactive_reactor_subscriptions", "Distinct live queries held by "
                      "Reactors.", multiprocess_mode="livesum")

GC_PAUSE = Histogram("reactive_gc_pause_seconds", "How long a garbage collection of "
                     "generation 1 or 2 stopped this process (a full one walks every tracked "
                     "object: long with many websocket sessions).", ["generation"],
                     buckets=ROUND_BUCKETS)

_installed = threading.Event()
# Collections timed by the gc callback, observed later by whoever records next: the callback
# takes no lock (a collection can start while any code holds one, prometheus_client's too).
_gc_pauses: deque[tuple[int, float]] = deque(maxlen=10_000)
_gc_started = [0.0]


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    """The ``gc.callbacks`` entry: times collections of the older generations (the youngest
    one's are frequent and short)."""
    generation = info["generation"]
    if not generation:
        return
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    elif _gc_started[0]:
        _gc_pauses.append((generation, time.perf_counter() - _gc_started[0]))
        _gc_started[0] = 0.0


def _observe_gc_pauses() -> None:
    while _gc_pauses:
        try:
            generation, seconds = _gc_pauses.popleft()
        except IndexError:  # another thread took the last one
            return
        GC_PAUSE.labels(str(generation)).observe(seconds)


def record_call(record: logs.CallRecord) -> None:
    """The call listener: one call counted and timed (unknown functions are not labelled)."""
    _observe_gc_pauses()
    kind = record.kind
    if kind is None:
        try:
            kind = str(registry.get(record.function, internal=True).kind)
        except Exception:
            return
    CALLS.labels(record.function, kind, "success" if record.ok else "error").inc()
    LATENCY.labels(record.function, kind).observe(record.duration)
    if record.rows_read:
        ROWS_READ.labels(record.function, kind).inc(record.rows_read)
    if record.rows_written:
        ROWS_WRITTEN.labels(record.function, kind).inc(record.rows_written)


def record_lost_race(function: str, sqlstate: str, gave_up: bool) -> None:
    """The transactions' conflict listener: a retry, or a conflict the mutation gave up on."""
    (CONFLICTS if gave_up else RETRIES).labels(function, sqlstate).inc()


def record_round(phases_us: Mapping[str, int], reruns: int, changes: int, lag: float | None,
                 sessions: int, subscriptions: int) -> None:
    """One Reactor round; ``sessions`` and ``subscriptions`` are this process's totals."""
    _observe_gc_pauses()
    ROUNDS.inc()
    for phase, micros in phases_us.items():
        ROUND_PHASES.labels(phase).observe(micros / 1e6)
    ROUND_TIME.observe(sum(phases_us.values()) / 1e6)
    RERUNS.observe(reruns)
    QUERY_RUNS.inc(reruns)
    CHANGES.inc(changes)
    if lag is not None:
        PUSH_LAG.observe(lag)
    SESSIONS.set(sessions)
    SUBSCRIPTIONS.set(subscriptions)


def multiprocess() -> bool:
    """Whether ``prometheus_client`` runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition_registry() -> CollectorRegistry:
    """What ``/api/metrics`` and the health page show: this process's registry, or, in
    multiprocess mode, every process's metrics merged from the shared directory; with the
    database-derived gauges either way."""
    _observe_gc_pauses()
    if not multiprocess():
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    merged.register(DatabaseCollector())
    return merged


def install() -> None:
    """Start counting (idempotent; the app does this at start-up)."""
    if _installed.is_set():
        return
    _installed.set()
    logs.add_listener(record_call)
    transaction.add_conflict_listener(record_lost_race)
    gc.callbacks.append(_time_collection)
    if not multiprocess():
        REGISTRY.register(DatabaseCollector())
