"""Celery's ``app.autodiscover_tasks()`` imports ``<app>.tasks``; ours live in
:mod:`reactive.scheduling.tasks`, :mod:`reactive.reactions.tasks` and
:mod:`reactive.datamigrations.tasks`. Each worker also starts the reaction dispatcher here
(``REACTION_DISPATCHER``), which resends stalled data migrations on every poll."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from reactive.datamigrations.tasks import data_migration, resend_stale
from reactive.reactions.tasks import DRAIN_TASK, reaction_drain, send_drain
from reactive.scheduling.quiet import quiet_periodic_ticks
from reactive.scheduling.tasks import (
    CRON_TICK_TASK,
    STORAGE_SWEEP_TASK,
    SWEEP_TASK,
    beat_entries,
    cron_tick,
    run_job,
    storage_sweep,
    sweep,
)

__all__ = [
    "beat_entries", "cron_tick", "data_migration", "reaction_drain", "run_job", "storage_sweep",
    "sweep",
]

# The ticks that run every second or so, idle or not, log at DEBUG (their failures stay ERROR).
quiet_periodic_ticks((SWEEP_TASK, CRON_TICK_TASK, STORAGE_SWEEP_TASK, DRAIN_TASK))

_dispatchers: list[Any] = []


@worker_ready.connect(dispatch_uid="reactive_dispatcher")  # type: ignore[untyped-decorator]
def _start_dispatcher(sender: Any = None, **kwargs: Any) -> None:
    from reactive.conf import reactive_settings
    from reactive.reactions.dispatcher import Dispatcher

    if reactive_settings().REACTION_DISPATCHER and not _dispatchers:
        dispatcher = Dispatcher(send_drain, ticks=(resend_stale,))
        dispatcher.start()
        _dispatchers.append(dispatcher)


@worker_shutdown.connect(dispatch_uid="reactive_dispatcher_stop")  # type: ignore[untyped-decorator]
def _stop_dispatcher(sender: Any = None, **kwargs: Any) -> None:
    while _dispatchers:
        _dispatchers.pop().stop()
