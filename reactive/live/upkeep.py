"""The Reactor's chores between rounds: the clock's persisted high-water mark, so timestamps
never go backwards across restarts, and pruning the change log now and then."""

from __future__ import annotations

import logging
import time

from django.db import connections

from reactive.capture import log
from reactive.clock import clock

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 60.0
CLOCK_RESERVATION_NS = 10_000_000_000  # persist the clock's high-water mark 10 s ahead


class Upkeep:
    """Runs in the round thread, on its connection. ``prune=False`` leaves pruning the log
    to other processes."""

    def __init__(self, *, prune: bool = True) -> None:
        self.prune = prune
        self._reserved = 0
        self._last_prune = 0.0

    def before_round(self) -> None:
        """On the first round, start above every timestamp a previous run could have sent."""
        if self._reserved == 0:
            with connections["default"].cursor() as cursor:
                clock.advance_to(log.clock_reservation(cursor))
            self._reserve(clock.now())

    def covers(self, ts: int) -> bool:
        """Whether the persisted high-water mark is already at or above ``ts``: a message
        carrying ``ts`` may go out before ``after_round`` (a restart starts above it)."""
        return ts <= self._reserved

    def after_round(self, ts: int) -> None:
        """Persist the clock's high-water mark ahead of use; prune the log now and then."""
        if ts + CLOCK_RESERVATION_NS // 2 > self._reserved:
            self._reserve(ts)
        if self.prune and time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
            self._last_prune = time.monotonic()
            with connections["default"].cursor() as cursor:
                pruned = log.prune(cursor)
                # Re-sent mutations arrive within a reconnect; a day is plenty (G2).
                cursor.execute("DELETE FROM reactive_sessionrequest "
                               "WHERE created_at < now() - interval '1 day'")
            if pruned:
                logger.info("change log pruned rows=%d", pruned)

    def _reserve(self, ts: int) -> None:
        reserved = ts + CLOCK_RESERVATION_NS
        with connections["default"].cursor() as cursor:
            log.reserve_clock(cursor, reserved)
        self._reserved = reserved
