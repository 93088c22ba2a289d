"""Celery's ``app.autodiscover_tasks()`` imports ``<app>.tasks``; ours live in
:mod:`reactive.scheduling.tasks`."""

from reactive.scheduling.tasks import beat_entries, cron_tick, run_job, storage_sweep, sweep

__all__ = ["beat_entries", "cron_tick", "run_job", "storage_sweep", "sweep"]
