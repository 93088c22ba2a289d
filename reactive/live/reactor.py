"""The Reactor: one per server process, it keeps every subscribed query's result current.

A round first takes in what sessions asked for since the last one (adds, removes, identity
changes, finished mutations), then, in one REPEATABLE READ READ ONLY transaction (snapshot S):
1. read the change-log rows committed since the previous snapshot (by txid visibility), in
   the same round trip as BEGIN and the snapshot;
2. match them against the read sets of the live queries;
3. re-run each invalidated or new query once per distinct (function, args, identity, journal),
   however many sessions hold it, keeping only results that changed;
4. send each affected session its finished MutationResponses, then one Transition to a fresh
   timestamp: before the (read-only) COMMIT when the persisted clock covers it, else after.
Queries not invalidated stay valid at S: no commit in (S_prev, S] touched their read sets.
Rounds run in one worker thread (its own database connection); the asyncio side only moves
messages. Rounds are woken by NOTIFY, by session activity, and by a periodic timer; a NOTIFY
naming only tables no live query of this process reads wakes no round, and the log is read
for the tables they read only. Who holds which query is :mod:`reactive.live.subscriptions`'s;
the log is :mod:`reactive.capture.log`'s; the clock's persistence and pruning are
:mod:`reactive.live.upkeep`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import connections

from reactive.capture import log, triggers
from reactive.capture.listener import Listener
from reactive.capture.matcher import Change, Matcher
from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.functions.outcome import database_trouble
from reactive.functions.runtime import Evaluation, Runtime, runtime
from reactive.functions.snapshots import run_snapshot
from reactive.live.inbox import InboxEvent, SessionHandle
from reactive.live.inflight import InFlight
from reactive.live.rerun import Rerunner, RoundAborted, spoiled
from reactive.live.subscriptions import Delivery, QueryEntry, Subscriptions
from reactive.live.upkeep import Upkeep

logger = logging.getLogger(__name__)

IDLE_ROUND_SECONDS = 5.0
# Where a round's time goes, summed in microseconds (``Reactor.phases_us``): applying session
# requests, BEGIN + snapshot, the log read, matching, re-runs, COMMIT (+ clock upkeep),
# building the messages, handing them to the sessions (on the event loop).
PHASES = ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send")


@dataclass(frozen=True)
class RoundReport:
    """One finished round, for round listeners (metrics): microseconds per phase, distinct
    queries (re-)run, change-log rows read, and the lag from the first NOTIFY that woke the
    round (Postgres sends it at commit) to the messages being handed to the sessions (None
    when no commit woke it or nothing was sent)."""

    phases_us: dict[str, int]
    reruns: int
    changes: int
    lag: float | None


RoundListener = Callable[["Reactor", RoundReport], None]
_round_listeners: list[RoundListener] = []


def add_round_listener(listener: RoundListener) -> None:
    """Call ``listener(reactor, report)`` on the event loop after every round of every
    Reactor of this process (it must be quick and must not raise)."""
    if listener not in _round_listeners:
        _round_listeners.append(listener)


class _Laps:
    """Adds the time since the previous lap to that phase's total (microseconds)."""

    def __init__(self, totals: dict[str, int]) -> None:
        self.totals = totals
        self.last = time.perf_counter_ns()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter_ns()
        self.totals[phase] += (now - self.last) // 1000
        self.last = now


class Reactor:
    """Owns the live queries of this process and the sessions that hold them.

    ``start`` runs rounds on the event loop's behalf; ``run_round`` is one round, synchronous,
    for that loop and for callers that drive rounds themselves (``reactive.testing``).
    ``prune=False`` leaves pruning the log to other processes.
    """

    def __init__(self, functions: Runtime = runtime, *, prune: bool = True,
                 rerun_connections: int | None = None) -> None:
        self.runtime = functions
        if rerun_connections is None:
            rerun_connections = reactive_settings().REACTOR_RERUN_CONNECTIONS
        self.rerunner = Rerunner(functions, rerun_connections)
        self.upkeep = Upkeep(prune=prune)
        self._inbox: list[InboxEvent] = []
        self.mutations = InFlight()  # the sessions' running mutations (see ``news``)
        self._wake = asyncio.Event()
        self._tables: set[str] = set()  # tables NOTIFY named since the last round
        self._any_table = False  # a NOTIFY named no table (a trigger from before 0008)
        self._last_round = 0.0
        self._busy = False  # a round is running in the worker thread
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="reactive-reactor")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivered_at: float | None = None  # when the current round's news was handed over
        self._listener = Listener(triggers.CHANNEL, self.notified, self._on_listen_lost)
        # Owned by the round thread:
        self.subscriptions = Subscriptions()
        self._matcher = Matcher()
        self._snapshot: str | None = None
        self._snapshot_time: Any = None
        self._rerun_all = False
        self._held: set[SessionHandle] = set()
        self.stats = {"rounds": 0, "executions": 0, "changes": 0, "notifies": 0, "skipped": 0}
        self.phases_us = dict.fromkeys(PHASES, 0)
        self._woken_at: float | None = None  # the first NOTIFY since the last round began

    # -- asyncio side --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name="reactor")
            self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.rerunner.shutdown()

    def post(self, event: InboxEvent) -> None:
        """Queue a session's request for the next round (called on the event loop)."""
        self._inbox.append(event)
        self._wake.set()

    def notified(self, table: str) -> None:
        """A NOTIFY on the change-log channel: a commit wrote ``table`` ("": some table)."""
        self.stats["notifies"] += 1
        if table and not self._busy and not self._matcher.involves((table,)):
            # Between rounds the read sets stand still (see round_due): drop it unwoken.
            self.stats["skipped"] += 1
            return
        if table:
            self._tables.add(table)
        else:
            self._any_table = True
        if self._woken_at is None:
            self._woken_at = time.monotonic()
        self._wake.set()

    def _on_listen_lost(self) -> None:
        # Notifications may have been missed; the log itself was not, but re-check all.
        self._rerun_all = True
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            idle = IDLE_ROUND_SECONDS - (time.monotonic() - self._last_round)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(idle, 0.0))
            self._wake.clear()
            due = self.round_due()
            self._tables.clear()
            self._any_table = False
            if not due:
                self.stats["skipped"] += 1
                continue
            inbox, self._inbox = self._inbox, []
            woken_at, self._woken_at = self._woken_at, None
            before = (dict(self.phases_us), self.stats["executions"], self.stats["changes"])
            self._delivered_at = None  # set by _send if this round hands messages over
            self._busy = True
            try:
                await loop.run_in_executor(self._executor, self.run_round, inbox, self._send_soon)
                failures = 0
            except Exception as exc:
                failures += 1
                if (trouble := database_trouble(exc)) is not None:  # the next round retries
                    logger.error("reactor round failed attempt=%d: %s", failures, trouble)
                else:
                    logger.exception("reactor round failed attempt=%d", failures)
                self._rerun_all = True
                self._busy = False
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                self._wake.set()
                continue
            self._busy = False
            self._report(before, woken_at, self._delivered_at)

    def _send_soon(self, deliveries: list[Delivery]) -> None:
        """From the round thread: have the loop hand the messages over, in round order (the
        loop runs callbacks in the order they were scheduled, and the round's own completion
        is scheduled after this)."""
        assert self._loop is not None
        if deliveries:
            self._loop.call_soon_threadsafe(self._send, deliveries)

    def _send(self, deliveries: list[Delivery]) -> None:
        sending = _Laps(self.phases_us)
        for handle, messages in deliveries:
            handle.deliver(messages)
        sending("send")
        self._delivered_at = time.monotonic()

    def _report(self, before: tuple[dict[str, int], int, int], woken_at: float | None,
                delivered_at: float | None) -> None:
        phases, executions, changes = before
        lag = None if woken_at is None or delivered_at is None else delivered_at - woken_at
        report = RoundReport(
            {phase: total - phases[phase] for phase, total in self.phases_us.items()},
            self.stats["executions"] - executions, self.stats["changes"] - changes, lag)
        for listener in list(_round_listeners):
            try:
                listener(self, report)
            except Exception:  # metrics must never stop the Reactor
                logger.exception("round listener failed listener=%r", listener)

    def round_due(self) -> bool:
        """Whether a round could change anything for this process's sessions.

        Yes for session requests, after a failure or a lost LISTEN, before the first round,
        for a NOTIFY naming no table, and every ``IDLE_ROUND_SECONDS`` (which advances the
        snapshot, so the log can be pruned behind it). Otherwise only if a notified table is
        one some read set involves (all of them, once a read set widened to everything).
        Between rounds no read set changes: they are set inside a round, and rounds run one
        at a time in this loop. A skipped commit is still in the log, and read by the next
        round if its table matters by then; a query that starts reading that table later is
        first run in a snapshot that already includes the commit.
        """
        if self._inbox or self._rerun_all or self._snapshot is None or self._any_table:
            return True
        if time.monotonic() - self._last_round >= IDLE_ROUND_SECONDS:
            return True
        return bool(self._tables) and self._matcher.involves(self._tables)

    # -- round thread --------------------------------------------------------------------

    def run_round(self, inbox: list[InboxEvent],
                  send: Callable[[list[Delivery]], None] | None = None) -> list[Delivery]:
        """One round; returns the messages for each session with news, in order.

        With ``send``, the messages go to ``send`` instead, before the round's ``COMMIT`` when
        the clock's persisted reservation already covers the round's timestamp (see "Sending
        before COMMIT" in docs/internals/reactor.md), and the round returns none.
        """
        lap = _Laps(self.phases_us)
        self._last_round = time.monotonic()
        # Requests are taken in before any database work, so a round that fails loses none:
        # the next one answers them (new queries stay unevaluated, responses stay queued).
        for event in inbox:
            for key in self.subscriptions.apply(event):
                self._matcher.remove(key)
            self.mutations.taken(event)
        lap("inbox")
        try:
            self.upkeep.before_round()
            ts, changed, sent = self._in_snapshot(lap, send)
            self.upkeep.after_round(ts)
            lap("commit")
        except Exception:
            connections["default"].close()  # a broken connection is reopened next round
            # Results this round computed were never sent; forget them, and re-run every
            # query, so that the next round sends each query's result again: a connection or
            # server error never reaches a client as a query's result.
            self.subscriptions.forget_results()
            self._rerun_all = True
            raise
        self.stats["rounds"] += 1
        if sent:
            return []
        news = self._news(changed, ts)
        lap("encode")
        if send is None:
            return news
        send(news)
        return []

    def _in_snapshot(self, lap: _Laps, send: Callable[[list[Delivery]], None] | None
                     ) -> tuple[int, set[Hashable], bool]:
        """The round's transaction: its timestamp, the keys of the results that changed, and
        whether the news went to ``send`` already (before ``COMMIT``)."""
        rerun = self._rerun_all or self._snapshot is None
        # Only the tables some read set involves: rows of others cannot match anything.
        tables = () if rerun else self._matcher.tables()
        first, params, with_log = log.opening(self._snapshot, tables)
        running = self.mutations.running()
        asked = InFlight.query(running)
        if asked is not None:
            first, params = f"{first}; {asked[0]}", params + asked[1]

        def body(cursor: Any) -> tuple[int, set[Hashable], bool]:
            lap("begin")  # BEGIN, the snapshot, the log and the in-flight question: one trip
            snapshot, now, pruned, changes = log.opened(cursor, with_log)
            held = InFlight.read(cursor, running) if asked is not None else set()
            # In S: mutations registered while the statement was on its way (rare: one more
            # round trip) may have committed before S was taken.
            self._held = held | self.mutations.committed_since(cursor, running)
            lap("log")
            dirty = self._dirty(rerun, pruned, changes, cursor)
            lap("match")
            self._snapshot, self._snapshot_time = snapshot, now
            changed = self._rerun(dirty)
            lap("rerun")
            ts = clock.next()
            if send is None or not self.upkeep.covers(ts):
                return ts, changed, False
            send(self._news(changed, ts))
            lap("encode")
            return ts, changed, True

        return run_snapshot(body, first, params or None, function="<reactor round>")

    def _news(self, changed: set[Hashable], ts: int) -> list[Delivery]:
        # A session whose mutation committed in S but whose MutationDone is not taken in yet
        # gets nothing now: its response must go before any Transition including the write.
        return self.subscriptions.news(changed, ts, time.time_ns(), held=self._held)

    def _rerun(self, dirty: set[Hashable]) -> set[Hashable]:
        pending = list(self.subscriptions.pending(dirty))
        changed = {entry.key for entry, result in self.rerunner.evaluate(pending)
                   if self._apply(entry, result)}
        self.subscriptions.evaluated()
        return changed

    def _dirty(self, rerun: bool, pruned: bool, changes: list[Change],
               cursor: Any) -> set[Hashable]:
        if rerun:
            everything = self._rerun_all
            self._rerun_all = False
            return set(self.subscriptions.queries) if everything else set()
        if pruned:
            logger.warning("reactor fell behind the change log; re-running every query")
            return set(self.subscriptions.queries)
        self.stats["changes"] += len(changes)
        return self._matcher.match(changes, cursor) if changes else set()

    def _apply(self, entry: QueryEntry, result: Evaluation) -> bool:
        """Keep one distinct query's re-run; True if its result (or error) changed."""
        self.stats["executions"] += 1
        if spoiled():
            # The connection broke under this query (its error may have been caught and
            # re-raised as something else): no result of this round can be trusted.
            raise RoundAborted(f"the round's connection failed during {entry.path}")
        self._matcher.set(entry.key, result.read_set)
        return entry.record(result.outcome, result.journal)

    # -- introspection (tests, benchmarks) -------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {"queries": len(self.subscriptions.queries),
                "sessions": len(self.subscriptions.sessions), **self.stats,
                **{f"{phase}_us": total for phase, total in self.phases_us.items()}}


_reactors: dict[asyncio.AbstractEventLoop, Reactor] = {}
_lock = threading.Lock()


def running_reactors() -> list[Reactor]:
    """The Reactors of this process (one per event loop that served a sync session)."""
    with _lock:
        return list(_reactors.values())


def get_reactor() -> Reactor:
    """The Reactor of the running event loop's process, started on first use."""
    loop = asyncio.get_running_loop()
    with _lock:
        reactor = _reactors.get(loop)
        if reactor is None:
            reactor = _reactors[loop] = Reactor()
            reactor.start()
    return reactor
