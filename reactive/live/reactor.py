"""The Reactor: one per server process, it keeps every subscribed query's result current.

A round first takes in what sessions asked for since the last one (adds, removes, identity
changes, finished mutations), then, in one REPEATABLE READ READ ONLY transaction (snapshot S):
1. read the change-log rows committed since the previous snapshot (by txid visibility);
2. match them against the read sets of the live queries;
3. re-run each invalidated or new query once per distinct (function, args, identity, journal),
   however many sessions hold it, keeping only results that changed;
4. after commit, send each affected session its finished MutationResponses, then one
   Transition to a fresh timestamp.
Queries not invalidated stay valid at S: no commit in (S_prev, S] touched their read sets.
Rounds run in one worker thread (its own database connection); the asyncio side only moves
messages. Rounds are woken by NOTIFY, by session activity, and by a periodic timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections

from reactive.capture import triggers
from reactive.capture.listener import Listener
from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.functions.arguments import decode_wire_args
from reactive.functions.registry import canonical_name
from reactive.functions.runtime import Call, Runtime, runtime
from reactive.functions.transaction import run_read_only
from reactive.live import protocol
from reactive.live.subscriptions import (
    IdentityChanged,
    InboxEvent,
    MutationDone,
    QueryEntry,
    QuerySetChanged,
    SessionClosed,
    SessionHandle,
    SessionState,
)

logger = logging.getLogger(__name__)

IDLE_ROUND_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 60.0
CLOCK_RESERVATION_NS = 10_000_000_000  # persist the clock's high-water mark 10 s ahead


class Reactor:
    """Owns the live queries of this process and the sessions that hold them."""

    def __init__(self, functions: Runtime = runtime) -> None:
        self.runtime = functions
        self._inbox: list[InboxEvent] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="reactive-reactor")
        self._task: asyncio.Task[None] | None = None
        self._listener = Listener(triggers.CHANNEL, self._on_notify, self._on_listen_lost)
        # Owned by the round thread:
        self._queries: dict[Hashable, QueryEntry] = {}
        self._sessions: dict[SessionHandle, SessionState] = {}
        self._touched: set[SessionState] = set()  # sessions that may have news this round
        self._tracked: set[str] | None = None
        self._unevaluated: set[Hashable] = set()  # new queries, not yet run
        from reactive.capture.matcher import Matcher

        self._matcher = Matcher()
        self._snapshot: str | None = None
        self._snapshot_time: Any = None
        self._rerun_all = False
        self._clock_reserved = 0
        self._last_prune = 0.0
        self.stats = {"rounds": 0, "executions": 0, "changes": 0}

    # -- asyncio side --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reactor")
            self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True, cancel_futures=True)

    def post(self, event: InboxEvent) -> None:
        """Queue a session's request for the next round (called on the event loop)."""
        self._inbox.append(event)
        self._wake.set()

    def _on_notify(self) -> None:
        self._wake.set()

    def _on_listen_lost(self) -> None:
        # Notifications may have been missed; the log itself was not, but re-check all.
        self._rerun_all = True
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_ROUND_SECONDS)
            self._wake.clear()
            inbox, self._inbox = self._inbox, []
            try:
                deliveries = await loop.run_in_executor(self._executor, self._round, inbox)
                failures = 0
            except Exception:
                failures += 1
                logger.exception("reactor round failed attempt=%d", failures)
                self._rerun_all = True
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                self._wake.set()
                continue
            for handle, messages in deliveries:
                handle.deliver(messages)

    # -- round thread --------------------------------------------------------------------

    def _round(self, inbox: list[InboxEvent]
               ) -> list[tuple[SessionHandle, list[protocol.Outgoing]]]:
        # Requests are taken in before any database work, so a round that fails loses none:
        # the next one answers them (new queries stay unevaluated, responses stay queued).
        for event in inbox:
            self._apply(event)
        try:
            if self._clock_reserved == 0:
                self._load_clock()
            changed = run_read_only(self._compute, function="<reactor round>")
            ts = clock.next()
            self._maintain(ts)
        except Exception:
            connections["default"].close()  # a broken connection is reopened next round
            # Results this round computed were never sent; forget them so that the re-run of
            # everything that follows sends each query's result again.
            for entry in self._queries.values():
                entry.digest = None
            raise
        self.stats["rounds"] += 1
        return self._messages(changed, ts)

    def _compute(self) -> set[Hashable]:
        with connections["default"].cursor() as cursor:
            # One round trip: the new snapshot, and whether the log was pruned past the old one.
            # Exact: a pruned row at or above the old snapshot's xmin may be one we never read.
            cursor.execute("SELECT pg_current_snapshot()::text, now(), (SELECT coalesce("
                           "int_value >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint, false) "
                           "FROM reactive_state WHERE name = 'pruned')", [self._snapshot])
            snapshot, now, pruned = cursor.fetchone()
            dirty = self._dirty(cursor, bool(pruned))
        self._snapshot, self._snapshot_time = snapshot, now
        changed: set[Hashable] = set()
        for key in (dirty | self._unevaluated) & self._queries.keys():
            if self._evaluate(self._queries[key]):
                changed.add(key)
        self._unevaluated.clear()
        return changed

    def _dirty(self, cursor: Any, pruned: bool) -> set[Hashable]:
        if self._rerun_all or self._snapshot is None:
            rerun = self._rerun_all
            self._rerun_all = False
            return set(self._queries) if rerun else set()
        if pruned:
            logger.warning("reactor fell behind the change log; re-running every query")
            return set(self._queries)
        changes = triggers.changes_since(cursor, self._snapshot)
        self.stats["changes"] += len(changes)
        return self._matcher.match(changes) if changes else set()

    def _evaluate(self, entry: QueryEntry) -> bool:
        """Re-run one distinct query; True if its result (or error) changed."""
        result = self.runtime.evaluate(Call(entry.path, entry.args, entry.identity,
                                             journal=entry.journal_in))
        self.stats["executions"] += 1
        self._matcher.set(entry.key, result.read_set)
        if logger.isEnabledFor(logging.DEBUG):
            self._report_untracked(entry, result.read_set.tables())
        journal = json.dumps(result.journal) if result.journal else None
        if result.outcome.ok and result.journal:
            # Re-runs keep the page ends this run chose (§4.10): without the pin a page re-read
            # as "numItems rows" after an insert drops its last row into a gap before the next.
            entry.journal_in = result.journal
        outcome = result.outcome
        # Keep the result as encoded text: smaller than the objects, and encoded once however
        # many sessions receive it.
        value_text = protocol.dumps(outcome.value) if outcome.ok else None
        hasher = hashlib.blake2b(digest_size=16)  # the value is hashed as the text we send
        hasher.update((value_text or "").encode())
        hasher.update(protocol.dumps([outcome.error, outcome.error_data, journal]).encode())
        digest = hasher.digest()
        entry.outcome = dataclasses.replace(outcome, value=None)
        entry.value_text, entry.journal_out = value_text, journal
        if digest == entry.digest:
            return False
        entry.digest = digest
        return True

    def _report_untracked(self, entry: QueryEntry, tables: frozenset[str]) -> None:
        """DEBUG: a query read a table without triggers; its writes will not be pushed."""
        if self._tracked is None:
            self._tracked = {m._meta.db_table for m in triggers.tracked_models()}
        for table in sorted(tables - self._tracked):
            logger.debug("query reads untracked table function=%s table=%s", entry.path, table)

    def _apply(self, event: InboxEvent) -> None:
        state = self._sessions.get(event.session)
        if state is None:
            if isinstance(event, SessionClosed):
                return
            state = self._sessions[event.session] = SessionState(event.session)
        self._touched.add(state)
        if isinstance(event, QuerySetChanged):
            for query_id in event.removes:
                self._unsubscribe(state, query_id)
                state.removed.add(query_id)
                state.fresh.discard(query_id)
            for add in event.adds:
                self._subscribe(state, add.query_id, add.path, add.args, add.journal)
            state.target_query_set = event.version
        elif isinstance(event, IdentityChanged):
            state.identity = event.identity
            state.target_identity = event.version
            # Detach all before re-attaching, in arrival order: one by one, a session over
            # WEBSOCKET_MAX_QUERIES would have its accepted queries refused.
            subscriptions = list(state.subscriptions.items())
            for query_id, _ in subscriptions:
                self._unsubscribe(state, query_id)
            for query_id, sub in subscriptions:
                self._subscribe(state, query_id, sub.path, sub.args, sub.journal)
        elif isinstance(event, MutationDone):
            state.responses.append(event)
        elif isinstance(event, SessionClosed):
            for query_id in list(state.subscriptions):
                self._unsubscribe(state, query_id)
            del self._sessions[event.session]
            self._touched.discard(state)

    def _subscribe(self, state: SessionState, query_id: int, path: str, args: Any,
                   journal: str | None) -> None:
        state.fresh.add(query_id)
        state.removed.discard(query_id)
        limit = reactive_settings().WEBSOCKET_MAX_QUERIES
        if len(state.subscriptions) >= limit:
            state.refuse(query_id, path, args, journal,
                         f"Too many subscriptions on this connection (limit {limit}).")
            return
        try:
            decoded = decode_wire_args(args) if isinstance(args, list) else args
            journal_in = _journal(journal)
            name = canonical_name(path)
            key = (name, json.dumps(decoded, sort_keys=True, default=repr), state.identity,
                   json.dumps(journal_in) if journal_in else None)
        except Exception as exc:  # bad args or journal: fail this query only
            state.refuse(query_id, path, args, journal, str(exc))
            return
        entry = self._queries.get(key)
        if entry is None:
            entry = self._queries[key] = QueryEntry(key, name, decoded, state.identity,
                                                    journal_in)
            self._unevaluated.add(key)
        entry.subscribers.add((state, query_id))
        state.attach(query_id, path, args, journal, key)

    def _unsubscribe(self, state: SessionState, query_id: int) -> None:
        key = state.detach(query_id)
        entry = self._queries.get(key) if key is not None else None
        if entry is None:
            return
        entry.subscribers.discard((state, query_id))
        if not entry.subscribers:
            del self._queries[entry.key]
            self._matcher.remove(entry.key)

    def _messages(self, changed: set[Hashable], ts: int
                  ) -> list[tuple[SessionHandle, list[protocol.Outgoing]]]:
        for key in changed:
            entry = self._queries.get(key)
            if entry is not None:
                for state, query_id in entry.subscribers:
                    state.fresh.add(query_id)
                    self._touched.add(state)
        out = []
        touched, self._touched = self._touched, set()
        for state in touched:
            if not state.has_news():
                continue
            modifications: list[protocol.Outgoing] = [
                self._modification(state, qid) for qid in sorted(state.fresh)
            ]
            modifications += [protocol.query_removed(qid) for qid in sorted(state.removed)]
            end = protocol.StateVersion(state.target_query_set, state.target_identity, ts)
            messages: list[protocol.Outgoing] = [r.response(ts) for r in state.responses]
            messages.append(protocol.transition(state.version, end, modifications, time.time_ns()))
            state.version = end
            state.clear_news()
            out.append((state.handle, messages))
        return out

    def _modification(self, state: SessionState, query_id: int) -> protocol.Outgoing:
        refused = state.refused.get(query_id)
        if refused is not None:
            return protocol.query_failed(query_id, refused, None, [])
        key = state.keys[query_id]
        entry = self._queries[key]
        outcome = entry.outcome
        assert outcome is not None
        if outcome.ok:
            assert entry.value_text is not None
            return protocol.query_updated_text(query_id, entry.value_text, entry.journal_out,
                                               outcome.log_lines)
        return protocol.query_failed(query_id, outcome.error or "", entry.journal_out,
                                     outcome.log_lines, outcome.error_data,
                                     outcome.has_error_data)

    def _load_clock(self) -> None:
        """Start above every timestamp a previous run could have sent (its reservation)."""
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT int_value FROM reactive_state WHERE name = 'clock'")
            row = cursor.fetchone()
        clock.advance_to(int(row[0]) if row and row[0] else 0)
        self._reserve_clock(clock.now())

    def _reserve_clock(self, ts: int) -> None:
        reserved = ts + CLOCK_RESERVATION_NS
        with connections["default"].cursor() as cursor:
            cursor.execute("UPDATE reactive_state SET int_value = GREATEST(int_value, %s) "
                           "WHERE name = 'clock'", [reserved])
        self._clock_reserved = reserved

    def _maintain(self, ts: int) -> None:
        """Persist the clock's high-water mark ahead of use; prune the log now and then."""
        if ts + CLOCK_RESERVATION_NS // 2 > self._clock_reserved:
            self._reserve_clock(ts)
        if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
            self._last_prune = time.monotonic()
            with connections["default"].cursor() as cursor:
                pruned = triggers.prune(cursor)
                # Re-sent mutations arrive within a reconnect; a day is plenty (G2).
                cursor.execute("DELETE FROM reactive_sessionrequest "
                               "WHERE created_at < now() - interval '1 day'")
            if pruned:
                logger.info("change log pruned rows=%d", pruned)

    # -- introspection (tests, benchmarks) -------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {"queries": len(self._queries), "sessions": len(self._sessions), **self.stats}


def _journal(text: str | None) -> list[str] | None:
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, list) or not all(isinstance(c, str) for c in data):
        raise protocol.ProtocolError("The journal is not one this server wrote.")
    return data


_reactors: dict[asyncio.AbstractEventLoop, Reactor] = {}
_lock = threading.Lock()


def get_reactor() -> Reactor:
    """The Reactor of the running event loop's process, started on first use."""
    loop = asyncio.get_running_loop()
    with _lock:
        reactor = _reactors.get(loop)
        if reactor is None:
            reactor = _reactors[loop] = Reactor()
            reactor.start()
    return reactor
