"""Gauges read from Postgres at scrape time: facts about the whole deployment (change-log
backlog, the scheduler's queue, lag and recent outcomes, reactions' lag, data migrations),
so every process and every scrape reports the same values."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db import connections
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 300  # "recent" for the scheduler's start lag and outcomes

SCHEDULER = """
SELECT
  (SELECT count(*) FROM reactive_change),
  (SELECT count(*) FROM reactive_job WHERE state = 'pending' AND due_at <= now()),
  (SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0) FROM reactive_job
    WHERE state = 'pending' AND due_at <= now()),
  (SELECT count(*) FROM reactive_job WHERE state = 'in_progress')
"""
START_LAG = f"""
SELECT extract(epoch FROM max(lag)), extract(epoch FROM percentile_cont(0.5) WITHIN GROUP
       (ORDER BY lag)), extract(epoch FROM percentile_cont(0.95) WITHIN GROUP (ORDER BY lag))
FROM (SELECT started_at - due_at AS lag FROM reactive_job
      WHERE started_at >= now() - interval '{WINDOW_SECONDS} seconds') AS recent
"""
FINISHED = f"""
SELECT state, count(*) FROM reactive_job
WHERE finished_at >= now() - interval '{WINDOW_SECONDS} seconds' GROUP BY state
"""
REACTIONS = """
SELECT name, state, extract(epoch FROM now() - cursor_at) FROM reactive_reaction
"""
MIGRATIONS = "SELECT state, count(*) FROM reactive_datamigration GROUP BY state"


class DatabaseCollector(Collector):
    """The deployment's gauges, one round trip per query; nothing when the database is down
    (a scrape must not fail because of it)."""

    def describe(self) -> Iterator[Any]:
        # Without describe(), registering would call collect(): queries (and a connection left
        # open) at start-up.
        return iter(())

    def collect(self) -> Iterator[Any]:
        try:
            with connections["default"].cursor() as cursor:
                rows = _read(cursor)
        except Exception as exc:
            logger.warning("metrics database read failed error=%s", exc)
            return
        yield from _families(*rows)


def _read(cursor: Any) -> tuple[Any, ...]:
    cursor.execute(SCHEDULER)
    head = cursor.fetchone()
    cursor.execute(START_LAG)
    lag = tuple(float(v or 0) for v in cursor.fetchone())
    cursor.execute(FINISHED)
    finished = dict(cursor.fetchall())
    cursor.execute(REACTIONS)
    reactions = cursor.fetchall()
    cursor.execute(MIGRATIONS)
    migrations = dict(cursor.fetchall())
    return (*head, lag), finished, reactions, migrations


def _families(head: Any, finished: dict[str, int], reactions: list[Any],
              migrations: dict[str, int]) -> Iterator[Any]:
    backlog, due, oldest, running, lag = head
    yield GaugeMetricFamily("reactive_change_log_rows", "Rows in the change log.", value=backlog)
    yield GaugeMetricFamily("reactive_scheduler_due_jobs", "Jobs due and not started.",
                            value=due)
    yield GaugeMetricFamily("reactive_scheduler_due_lag_seconds",
                            "How long the oldest due job has waited.", value=float(oldest))
    yield GaugeMetricFamily("reactive_scheduler_running_jobs", "Jobs in progress.",
                            value=running)
    start = GaugeMetricFamily("reactive_scheduler_start_lag_seconds", "Due to start, for jobs "
                              f"started in the last {WINDOW_SECONDS} s.", labels=["quantile"])
    for quantile, value in zip(("1", "0.5", "0.95"), lag, strict=True):
        start.add_metric([quantile], value)
    yield start
    outcomes = GaugeMetricFamily("reactive_scheduler_finished_jobs", "Jobs finished in the "
                                 f"last {WINDOW_SECONDS} s, by state.", labels=["state"])
    for state in ("success", "failed", "canceled"):
        outcomes.add_metric([state], finished.get(state, 0))
    yield outcomes
    lags = GaugeMetricFamily("reactive_reaction_lag_seconds", "Age of each reaction's cursor.",
                             labels=["reaction", "state"])
    for name, state, age in reactions:
        lags.add_metric([name, state], float(age))
    yield lags
    states = GaugeMetricFamily("reactive_data_migrations", "Data migrations by state.",
                               labels=["state"])
    for state, count in sorted(migrations.items()):
        states.add_metric([state], count)
    yield states
