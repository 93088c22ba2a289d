"""The periodic sweep that keeps jobs moving when the happy path did not: it sends tasks for
jobs that never reached the broker, ends actions whose worker died, and prunes old history.

Celery beat runs it every ``SCHEDULER_SWEEP_INTERVAL`` seconds. Any number of sweeps may run at
once: rows are taken with ``FOR UPDATE SKIP LOCKED`` and every transition is guarded by state,
and a task sent twice is harmless (the job runner skips jobs that are not pending).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.functions.scheduler import send
from reactive.models import CronRun, Job, JobCommit, JobState
from reactive.models.jobs import FINISHED
from reactive.scheduling.runner import recover

logger = logging.getLogger(__name__)

BATCH = 500  # rows per step per sweep; a backlog drains over consecutive sweeps


@dataclass(frozen=True)
class SweepReport:
    sent: int = 0
    lost: int = 0
    pruned: int = 0


def sweep(now: datetime.datetime | None = None) -> SweepReport:
    """Run every step once and say how many jobs each touched."""
    now = now or timezone.now()
    report = SweepReport(lost=expire_leases(now), sent=dispatch(now), pruned=prune(now))
    if report.sent or report.lost:
        logger.info(
            "sweep finished sent=%d lost=%d pruned=%d", report.sent, report.lost, report.pruned
        )
    return report


def expire_leases(now: datetime.datetime) -> int:
    """Settle running jobs whose lease ran out (see :func:`reactive.scheduling.runner.recover`)."""
    with transaction.atomic():
        lost = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state=JobState.IN_PROGRESS, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:BATCH]
        )
        for job in lost:
            logger.warning(
                "job lost job=%d function=%s worker=%s", job.pk, job.function, job.worker
            )
            recover(job, now)
    return len(lost)


def dispatch(now: datetime.datetime) -> int:
    """Send tasks for pending jobs that need one; return how many were sent.

    A job needs one when none was sent yet and it is due within ``SCHEDULER_ETA_HORIZON``, or
    when one was sent but the job is still pending ``SCHEDULER_DISPATCH_GRACE`` seconds after
    both its due time and that send (the broker lost it, or the worker died holding it).
    Rows are marked sent before the tasks go out; if the broker is down they fall under the
    second rule and are tried again after the grace period.
    """
    conf = reactive_settings()
    horizon = now + datetime.timedelta(seconds=conf.SCHEDULER_ETA_HORIZON)
    stale = now - datetime.timedelta(seconds=conf.SCHEDULER_DISPATCH_GRACE)
    needs_task = Q(dispatched_at__isnull=True, due_at__lte=horizon) | Q(
        dispatched_at__lt=stale, due_at__lt=stale
    )
    with transaction.atomic():
        jobs = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(needs_task, state=JobState.PENDING)
            .order_by("due_at")
            .values_list("pk", "due_at")[:BATCH]
        )
        Job.objects.filter(pk__in=[pk for pk, _ in jobs]).update(dispatched_at=now)
    for sent, (pk, due) in enumerate(jobs):
        try:
            send(pk, due, now)
        except Exception:
            logger.warning("sweep dispatch failed job=%d; will retry", pk, exc_info=True)
            return sent
    return len(jobs)


def prune(now: datetime.datetime) -> int:
    """Delete finished jobs and cron runs older than ``SCHEDULER_JOB_RETENTION``."""
    cutoff = now - datetime.timedelta(seconds=reactive_settings().SCHEDULER_JOB_RETENTION)
    runs = list(CronRun.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:BATCH])
    CronRun.objects.filter(pk__in=runs).delete()
    finished = Job.objects.filter(state__in=FINISHED, finished_at__lt=cutoff)
    old = list(finished.values_list("pk", flat=True)[:BATCH])
    JobCommit.objects.filter(job_id__in=old).delete()
    Job.objects.filter(pk__in=old).delete()
    return len(old) + len(runs)
