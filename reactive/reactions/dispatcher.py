"""The dispatcher: a thread in each Celery worker that LISTENs on the change log's channel and
sends a drain task per reaction when commits arrive (and every ``REACTION_POLL_INTERVAL``
seconds, for retries due and missed notifications).

A drain sent twice is harmless (the second finds the row locked, or nothing to do), so any
number of workers may run a dispatcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from django.db import close_old_connections

from reactive.capture.listener import CONNECT_TIMEOUT, conninfo
from reactive.capture.triggers import CHANNEL
from reactive.conf import reactive_settings
from reactive.reactions.definitions import registry
from reactive.reactions.runner import ensure_rows

logger = logging.getLogger(__name__)


class Dispatcher:
    """Calls ``send(name)`` for every reaction on each wake-up, and each ``tick`` callback on
    every poll interval."""

    def __init__(self, send: Callable[[str], None], ticks: tuple[Callable[[], object], ...] = ()
                 ) -> None:
        self.send = send
        self.ticks = ticks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reactive-dispatcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
                delay = 0.1
            except Exception as exc:
                logger.warning("reaction dispatcher lost its connection error=%s", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                close_old_connections()

    def _listen(self) -> None:
        interval = reactive_settings().REACTION_POLL_INTERVAL
        with psycopg.connect(conninfo(), autocommit=True,
                             connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            ensure_rows()
            self._wake()
            next_tick = 0.0
            while not self._stop.is_set():
                woke = any(True for _ in conn.notifies(timeout=interval, stop_after=1))
                if woke:
                    self._wake()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + interval
                    if not woke:
                        self._wake()
                    for tick in self.ticks:
                        try:
                            tick()
                        except Exception:
                            logger.warning("dispatcher tick failed tick=%s", tick.__name__,
                                           exc_info=True)

    def _wake(self) -> None:
        for reaction in registry:
            try:
                self.send(reaction.name)
            except Exception:
                logger.warning("reaction dispatch failed reaction=%s", reaction.name,
                               exc_info=True)
