"""The Celery tasks the scheduler and crons run on, and their Celery beat entries.

Found by the standard ``app.autodiscover_tasks()``; the beat entries (the sweeper, the cron
tick and the stored-file orphan sweep) are added to whichever beat scheduler starts, so a
project writes no Celery code beyond its ``celery.py``. Tasks only translate and delegate.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import beat_init

from reactive.conf import reactive_settings
from reactive.functions.scheduler import RUN_JOB_TASK
from reactive.scheduling import runner, sweeper
from reactive.scheduling.cron_tick import tick
from reactive.storage import orphans

SWEEP_TASK = "reactive.sweep"
CRON_TICK_TASK = "reactive.cron_tick"
STORAGE_SWEEP_TASK = "reactive.storage_sweep"


@shared_task(name=RUN_JOB_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def run_job(job_id: int) -> None:
    """Run scheduled job ``job_id`` (a duplicate delivery does nothing)."""
    runner.run_job(job_id)


@shared_task(name=SWEEP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep() -> None:
    """Send lost or late jobs, end actions whose worker died, prune old history."""
    sweeper.sweep()


@shared_task(name=CRON_TICK_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def cron_tick() -> None:
    """Fire the crons that are due."""
    tick()


@shared_task(name=STORAGE_SWEEP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def storage_sweep() -> None:
    """Delete stored files no row references once older than ``STORAGE_ORPHAN_AGE``."""
    orphans.sweep()


def beat_entries() -> dict[str, dict[str, Any]]:
    """The periodic tasks this app needs, as ``beat_schedule`` entries.

    Each expires after one interval: ticks queued while no worker ran are dropped, not replayed.
    """
    conf = reactive_settings()
    return {
        SWEEP_TASK: {
            "task": SWEEP_TASK,
            "schedule": conf.SCHEDULER_SWEEP_INTERVAL,
            "options": {"expires": conf.SCHEDULER_SWEEP_INTERVAL},
        },
        CRON_TICK_TASK: {
            "task": CRON_TICK_TASK,
            "schedule": conf.SCHEDULER_CRON_TICK_INTERVAL,
            "options": {"expires": max(conf.SCHEDULER_CRON_TICK_INTERVAL, 1.0)},
        },
        STORAGE_SWEEP_TASK: {
            "task": STORAGE_SWEEP_TASK,
            "schedule": conf.STORAGE_ORPHAN_SWEEP_INTERVAL,
            "options": {"expires": conf.STORAGE_ORPHAN_SWEEP_INTERVAL},
        },
    }


@beat_init.connect(dispatch_uid="reactive_beat_entries")  # type: ignore[untyped-decorator]
def _add_beat_entries(sender: Any, **kwargs: Any) -> None:
    """Add our entries to the starting beat (``sender`` is its ``celery.beat.Service``).

    Entries of the same name in the project's ``CELERY_BEAT_SCHEDULE`` win;
    ``REACTIVE['SCHEDULER_BEAT_ENTRIES'] = False`` adds none.
    """
    if not reactive_settings().SCHEDULER_BEAT_ENTRIES:
        return
    configured = sender.app.conf.beat_schedule or {}
    entries = {name: entry for name, entry in beat_entries().items() if name not in configured}
    sender.scheduler.update_from_dict(entries)
