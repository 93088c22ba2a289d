"""Protocol timestamps: a strictly increasing nanosecond clock (``ts`` in the Convex protocol)."""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock nanoseconds, forced to increase strictly within this process.

    ``advance_to`` lets the owner raise the floor (e.g. to a high-water mark persisted in the
    database) so timestamps never go backwards across restarts or clock steps.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        """A timestamp no smaller than any returned before (equal only if the clock stalls)."""
        with self._lock:
            self._last = max(self._last, time.time_ns())
            return self._last

    def next(self) -> int:
        """A timestamp strictly greater than any returned before."""
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last

    def advance_to(self, floor: int) -> None:
        with self._lock:
            self._last = max(self._last, floor)


clock = Clock()
