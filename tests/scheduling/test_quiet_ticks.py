"""The periodic ticks stay out of a worker's INFO log (a tick a second buried real errors)."""

from __future__ import annotations

import logging

import pytest

import reactive.tasks  # noqa: F401 - installs the filter, as a worker's autodiscovery does
from reactive.scheduling.quiet import CELERY_LOGGERS


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("task", ["reactive.cron_tick", "reactive.sweep",
                                  "reactive.storage_sweep", "reactive.reaction_drain"])
def test_periodic_ticks_log_at_debug_and_other_tasks_at_info(task: str) -> None:
    # Given the worker's "task received" logger at INFO, as `celery worker --loglevel INFO`
    logger = logging.getLogger(CELERY_LOGGERS[0])
    keep, level = Keep(), logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        # When a tick and a scheduled job are received
        for name in (task, "reactive.run_job"):
            logger.info("Task %(name)s[%(id)s] received", {"name": name, "id": "x"})
        # Then only the job is in the log; at DEBUG the tick is there too, marked DEBUG
        assert [r.getMessage() for r in keep.records] == ["Task reactive.run_job[x] received"]
        logger.setLevel(logging.DEBUG)
        logger.info("Task %(name)s[%(id)s] received", {"name": task, "id": "y"})
        assert keep.records[-1].levelname == "DEBUG"
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
