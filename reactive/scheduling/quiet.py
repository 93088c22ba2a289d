"""The periodic ticks' log lines at DEBUG: Celery logs every run of the cron tick and the
sweeper at INFO (received, succeeded, beat's "Sending due task"), two lines a second."""

from __future__ import annotations

import logging

# Where Celery logs each task run (celery/worker/strategy.py, app/trace.py, beat.py).
CELERY_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")


class PeriodicTickFilter(logging.Filter):
    """Demote the records about ``tasks`` to DEBUG; show them only where DEBUG is enabled.

    A logger filter, so it sees records after the level test: it lowers the level and then
    applies the logger's own DEBUG test (``--loglevel DEBUG`` keeps them). Failures of those
    tasks are logged at ERROR by other records and are never touched.
    """

    def __init__(self, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.tasks = tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._about_tick(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _about_tick(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict):
            return args.get("name") in self.tasks
        return isinstance(args, tuple) and any(arg in self.tasks for arg in args)


def quiet_periodic_ticks(tasks: tuple[str, ...]) -> None:
    """Install the filter on Celery's task-run loggers (once per process)."""
    for name in CELERY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, PeriodicTickFilter) for f in logger.filters):
            logger.addFilter(PeriodicTickFilter(tasks))
