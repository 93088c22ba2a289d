"""The dispatcher: a thread in each Celery worker that LISTENs on the change log's channel and
sends a drain task to each reaction the commits gave a matching change (and to every reaction each
``REACTION_POLL_INTERVAL`` seconds, for retries due and missed notifications).

A drain sent twice is harmless (the second finds the drain lock taken, or nothing to do), so any
number of workers may run a dispatcher.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import close_old_connections
from django.db.models.expressions import RawSQL
from django.utils import timezone

from reactive.capture.listener import CONNECT_TIMEOUT, conninfo
from reactive.capture.triggers import CHANNEL
from reactive.conf import reactive_settings
from reactive.exceptions import DefinitionError
from reactive.models import Reaction
from reactive.reactions.definitions import registry
from reactive.reactions.log import match_sql
from reactive.reactions.runner import LOCK_NAMESPACE, ensure_rows

logger = logging.getLogger(__name__)

RESEND_AFTER = 5.0
# Under steady commits every reaction is still woken once per this many poll intervals (for
# retries that are due and to move idle cursors), not on every interval: at a poll interval
# of 0.2 s that would be a drain task per reaction five times a second.
BUSY_POLL_EVERY = 10
# Whether a drain of the row's reaction holds its advisory lock (runner.LOCK_NAMESPACE).
RUNNING = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = %s AND l.objid = hashtext(reactive_reaction.name)::oid "
    "AND l.objsubid = 2)"
)


class Dispatcher:
    """Calls ``send(name)`` for every reaction on each wake-up, and each ``tick`` callback on
    every poll interval."""

    def __init__(self, send: Callable[[str], None], ticks: tuple[Callable[[], object], ...] = ()
                 ) -> None:
        self.send = send
        self.ticks = ticks
        self._stop = threading.Event()
        self._sent: dict[str, datetime.datetime] = {}
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
            snapshot = self._due(conn, None)[0]
            self._wake(None)
            next_tick, ticks = 0.0, 0
            while not self._stop.is_set():
                woke = any(True for _ in conn.notifies(timeout=interval, stop_after=1))
                if woke:
                    # Every commit notifies: take those already waiting in one wake-up.
                    for _ in conn.notifies(timeout=0):
                        pass
                    snapshot, due = self._due(conn, snapshot)
                    self._wake(due)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + interval
                    ticks += 1
                    if not woke or ticks % BUSY_POLL_EVERY == 0:
                        self._wake(None)  # retries due, idle cursors; rarer under commits
                    for tick in self.ticks:
                        try:
                            tick()
                        except Exception:
                            logger.warning("dispatcher tick failed tick=%s", tick.__name__,
                                           exc_info=True)

    @staticmethod
    def _due(conn: psycopg.Connection[Any], previous: str | None
                        ) -> tuple[str, set[str] | None]:
        """The reactions that commits since ``previous`` gave a change to handle (one
        statement, one snapshot; None: all, when there is no previous snapshot). A reaction
        with only changes that do not match waits for the poll to move its cursor."""
        reactions = list(registry)
        tests, params = [], []
        for reaction in reactions:
            try:
                match, match_params = match_sql(reaction)
            except DefinitionError:  # reported by reactive.E022; let its drain fail loudly
                match, match_params = "TRUE", []
            tests.append(
                "EXISTS (SELECT 1 FROM reactive_change c WHERE c.tbl = %s "
                "AND c.txid >= pg_snapshot_xmin(%s::pg_snapshot) "
                f"AND NOT pg_visible_in_snapshot(c.txid, %s::pg_snapshot) AND {match})"
            )
            params += [reaction.model._meta.db_table, previous, previous, *match_params]
        if previous is None or not reactions:
            row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            assert row is not None
            return row[0], None
        row = conn.execute(f"SELECT pg_current_snapshot()::text, ARRAY[{', '.join(tests)}]",
                           params).fetchone()
        assert row is not None
        return row[0], {r.name for r, due in zip(reactions, row[1], strict=True) if due}

    def _wake(self, due: set[str] | None) -> None:
        """Send a drain to each reaction named in ``due`` (all when it is None),
        unless a drain is running (it looks again after it releases its lock) or one it was
        sent has not stepped yet: one queued drain per reaction is enough, since a drain
        steps until nothing is left. A send older than ``RESEND_AFTER`` seconds is assumed
        lost."""
        rows = {name: (stepped, running) for name, stepped, running in Reaction.objects
                .annotate(running=RawSQL(RUNNING, [LOCK_NAMESPACE]))
                .values_list("name", "updated_at", "running")}
        now = timezone.now()
        for reaction in registry:
            if due is not None and reaction.name not in due:
                continue
            sent = self._sent.get(reaction.name)
            stepped, running = rows.get(reaction.name, (None, False))
            if running or (sent is not None and stepped is not None and stepped < sent
                           and (now - sent).total_seconds() < RESEND_AFTER):
                continue
            try:
                self.send(reaction.name)
                self._sent[reaction.name] = now
            except Exception:
                logger.warning("reaction dispatch failed reaction=%s", reaction.name,
                               exc_info=True)
