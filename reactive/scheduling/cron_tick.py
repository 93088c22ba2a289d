"""Firing crons: each Celery beat tick syncs the cron table with the code, then fires every due
occurrence exactly once, skipping (and recording) occurrences whose previous run still runs.

Exactly once across any number of beat processes: an occurrence fires in the transaction that
locks its cron row (``FOR UPDATE SKIP LOCKED``), re-checks ``next_run_at`` and moves it on; a
concurrent tick skips the locked row or, later, finds it no longer due. A unique constraint on
(cron, occurrence) backs this up. Occurrences missed while nothing ticked are not caught up:
the next tick fires the latest one and schedules the next after now.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from reactive.exceptions import SchedulingError
from reactive.functions.registry import Registry
from reactive.functions.registry import registry as function_registry
from reactive.functions.scheduler import Scheduler, prepare
from reactive.models import Cron, CronRun, CronRunStatus, JobState
from reactive.scheduling import crons

logger = logging.getLogger(__name__)

RUNNING = (JobState.PENDING, JobState.IN_PROGRESS)


def tick(
    now: datetime.datetime | None = None,
    specs: crons.CronRegistry = crons.registry,
    functions: Registry = function_registry,
) -> list[CronRun]:
    """Sync the cron table, then fire what is due at ``now``; return the runs recorded."""
    now = now or timezone.now()
    sync(now, specs, functions)
    due = Cron.objects.filter(active=True, next_run_at__lte=now).values_list("pk", flat=True)
    runs = []
    for pk in due:
        run = _fire(pk, now, specs, functions)
        if run is not None:
            runs.append(run)
    return runs


def sync(
    now: datetime.datetime | None = None,
    specs: crons.CronRegistry = crons.registry,
    functions: Registry = function_registry,
) -> None:
    """Make the cron table match the declared crons: add new ones, update changed ones,
    retire the ones no longer declared (renamed or removed) and revive returning ones."""
    now = now or timezone.now()
    wanted = {spec.name: _fields(spec, functions) for spec in specs}
    if _matches(wanted, {row.name: row for row in Cron.objects.all()}):
        return
    with transaction.atomic():
        Cron.objects.bulk_create(
            [Cron(name=name, active=False, **fields) for name, fields in wanted.items()],
            ignore_conflicts=True,
        )
        for row in Cron.objects.select_for_update().order_by("pk"):
            spec = specs.get(row.name)
            if spec is None:
                if row.active:
                    _retire(row, now)
                continue
            _update(row, spec, wanted[row.name], now)


def _fields(spec: crons.CronSpec, functions: Registry) -> dict[str, Any]:
    _, args = prepare(functions, spec.function, spec.args)
    return {"schedule": spec.schedule.describe(), "function": spec.function_name, "args": args}


def _matches(wanted: dict[str, dict[str, Any]], rows: dict[str, Cron]) -> bool:
    for name, row in rows.items():
        if row.active != (name in wanted):
            return False
    for name, fields in wanted.items():
        found = rows.get(name)
        if found is None or any(getattr(found, key) != value for key, value in fields.items()):
            return False
    return True


def _retire(row: Cron, now: datetime.datetime) -> None:
    row.active, row.retired_at, row.next_run_at = False, now, None
    row.save(update_fields=["active", "retired_at", "next_run_at", "updated_at"])
    logger.info("cron retired name=%s", row.name)


def _update(
    row: Cron, spec: crons.CronSpec, fields: dict[str, Any], now: datetime.datetime
) -> None:
    rescheduled = not row.active or row.schedule != fields["schedule"] or row.next_run_at is None
    if not rescheduled and all(getattr(row, key) == value for key, value in fields.items()):
        return
    for key, value in fields.items():
        setattr(row, key, value)
    if rescheduled:
        row.active, row.retired_at = True, None
        row.next_run_at = spec.schedule.first(now)
        logger.info("cron scheduled name=%s next=%s", row.name, row.next_run_at.isoformat())
    row.save()


def _fire(
    pk: int, now: datetime.datetime, specs: crons.CronRegistry, functions: Registry
) -> CronRun | None:
    with transaction.atomic():
        row = (
            Cron.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, active=True, next_run_at__lte=now)
            .first()
        )
        spec = specs.get(row.name) if row is not None else None
        if row is None or row.next_run_at is None or spec is None:
            return None  # fired by another tick meanwhile, or not ours to fire
        occurrence = row.next_run_at
        run = CronRun(cron=row, scheduled_for=occurrence, status=CronRunStatus.SKIPPED)
        run.reason = _still_running(row)
        if not run.reason:
            try:
                job_id = Scheduler(functions).run_at(occurrence, spec.function, **spec.args)
            except SchedulingError as exc:
                run.reason = f"Could not schedule the run: {exc}"
            else:
                run.status, run.job_id = CronRunStatus.FIRED, int(job_id)
        run.save()
        row.last_run_at = occurrence
        row.next_run_at = spec.schedule.next_after(occurrence, now)
        row.save(update_fields=["last_run_at", "next_run_at", "updated_at"])
    logger.info("cron %s name=%s occurrence=%s", run.status, row.name, occurrence.isoformat())
    return run


def _still_running(row: Cron) -> str:
    previous = (
        CronRun.objects.filter(cron=row, status=CronRunStatus.FIRED)
        .select_related("job")
        .order_by("-scheduled_for")
        .first()
    )
    if previous is None or previous.job is None or previous.job.state not in RUNNING:
        return ""
    return (
        f"The run for {previous.scheduled_for.isoformat()} (job {previous.job.pk}) is still "
        f"{previous.job.state}; a cron never overlaps with itself."
    )
