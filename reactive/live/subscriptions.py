"""The Reactor's bookkeeping, without a database: the distinct live queries, each session's view
of them, and the messages each session is owed after a round."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reactive.conf import reactive_settings
from reactive.exceptions import ResultTooLarge
from reactive.functions.arguments import decode_wire_args
from reactive.functions.registry import canonical_name
from reactive.functions.runtime import Outcome
from reactive.live import protocol
from reactive.live.inbox import (
    IdentityChanged,
    InboxEvent,
    MutationDone,
    QuerySetChanged,
    SessionClosed,
    SessionHandle,
)
from reactive.types import ANONYMOUS, Identity

logger = logging.getLogger(__name__)

Delivery = tuple[SessionHandle, list[protocol.Outgoing]]


@dataclass(eq=False, slots=True)
class QueryEntry:
    """One distinct (function, args, identity, journal): computed once per round for all."""

    key: Hashable
    path: str
    args: dict[str, Any]
    identity: Identity
    journal_in: list[str] | None
    subscribers: set[tuple[SessionState, int]] = field(default_factory=set)
    outcome: Outcome | None = None  # its value is dropped; the encoded text is kept instead
    digest: bytes | None = None
    journal_out: str | None = None
    # A result's QueryUpdated after its queryId, encoded once for every holder (None: failed).
    updated_tail: str | None = None

    def record(self, outcome: Outcome, journal: list[str]) -> bool:
        """Keep a re-run's result; True if it (or its error) differs from the previous one."""
        journal_text = json.dumps(journal) if journal else None
        if outcome.ok and journal:
            # Re-runs keep the page ends this run chose (docs/internals/reactor.md): without the
            # pin a page re-read as "numItems rows" after an insert drops its last row into a gap.
            self.journal_in = journal
        # Kept as encoded text: smaller than the objects, and encoded once however many
        # sessions receive it.
        value_text = protocol.dumps(outcome.value) if outcome.ok else None
        limit = reactive_settings().WEBSOCKET_MAX_RESULT_BYTES
        if value_text is not None and len(value_text) > limit:  # ASCII: characters = bytes
            too_large = ResultTooLarge(self.path, len(value_text), limit)
            logger.warning("live query result too large function=%s bytes=%d limit=%d",
                           self.path, len(value_text), limit)
            outcome = Outcome(error=str(too_large), code=too_large.code,
                              log_lines=outcome.log_lines)
            value_text = None
        hasher = hashlib.blake2b(digest_size=16)  # the value is hashed as the text we send
        hasher.update((value_text or "").encode())
        hasher.update(protocol.dumps([outcome.error, outcome.error_data, journal_text]).encode())
        digest = hasher.digest()
        self.outcome = dataclasses.replace(outcome, value=None)
        self.journal_out = journal_text
        self.updated_tail = (None if value_text is None else protocol.query_updated_tail(
            value_text, journal_text, outcome.log_lines))
        if digest == self.digest:
            return False
        self.digest = digest
        return True

    def modification(self, query_id: int) -> protocol.Outgoing:
        outcome = self.outcome
        assert outcome is not None
        if self.updated_tail is not None:
            return protocol.query_updated(query_id, self.updated_tail)
        return protocol.query_failed(query_id, outcome.error or "", self.journal_out,
                                     outcome.log_lines, outcome.error_data,
                                     outcome.has_error_data)


@dataclass(frozen=True, slots=True)
class Subscription:
    path: str
    args: Any
    journal: str | None


@dataclass(eq=False, slots=True)
class News:
    """What one session is owed since its last Transition. It exists only from the event or
    round that touches the session until its Transition is built: an idle session holds
    none (thousands of idle sessions, four containers fewer each)."""

    fresh: set[int] = field(default_factory=set)  # queries whose result goes out
    removed: set[int] = field(default_factory=set)  # queries that get a QueryRemoved
    responses: list[MutationDone] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fresh or self.removed or self.responses)


@dataclass(eq=False, slots=True)
class SessionState:
    """The Reactor's view of one session: its queries and what it has been sent."""

    handle: SessionHandle
    identity: Identity = ANONYMOUS
    version: protocol.StateVersion = protocol.INITIAL_VERSION
    target_query_set: int = 0
    target_identity: int = 0
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    keys: dict[int, Hashable] = field(default_factory=dict)
    refused: dict[int, str] | None = None  # made by the first refusal: most sessions have none
    news: News | None = None

    def owed(self) -> News:
        if self.news is None:
            self.news = News()
        return self.news

    def attach(self, query_id: int, sub: Subscription, key: Hashable) -> None:
        self.subscriptions[query_id] = sub
        self.keys[query_id] = key

    def refuse(self, query_id: int, sub: Subscription, message: str) -> None:
        self.subscriptions[query_id] = sub
        if self.refused is None:
            self.refused = {}
        self.refused[query_id] = message

    def detach(self, query_id: int) -> Hashable | None:
        self.subscriptions.pop(query_id, None)
        if self.refused is not None:
            self.refused.pop(query_id, None)
        return self.keys.pop(query_id, None)

    def has_news(self) -> bool:
        return bool(
            self.news
            or self.target_query_set != self.version.query_set
            or self.target_identity != self.version.identity
        )


class Subscriptions:
    """Every live query of one process, the sessions holding them, and what each is owed.

    ``apply`` takes in a session's event; ``pending`` names the queries a round must run;
    ``news`` builds each touched session's messages. Queries no session holds any more are
    returned by ``apply`` so that the caller can forget their read sets.
    """

    def __init__(self) -> None:
        self.queries: dict[Hashable, QueryEntry] = {}
        self.sessions: dict[SessionHandle, SessionState] = {}
        self._touched: set[SessionState] = set()  # sessions that may have news
        self._unevaluated: set[Hashable] = set()  # new queries, not yet run

    def apply(self, event: InboxEvent) -> list[Hashable]:
        """Take in one event; return the keys of queries that lost their last subscriber."""
        dropped: list[Hashable] = []
        state = self.sessions.get(event.session)
        if state is None:
            if isinstance(event, SessionClosed):
                return dropped
            state = self.sessions[event.session] = SessionState(event.session)
        self._touched.add(state)
        if isinstance(event, QuerySetChanged):
            news = state.owed()
            for query_id in event.removes:
                self._unsubscribe(state, query_id, dropped)
                news.removed.add(query_id)
                news.fresh.discard(query_id)
            for add in event.adds:
                self._subscribe(state, add.query_id, Subscription(add.path, add.args, add.journal))
            state.target_query_set = event.version
        elif isinstance(event, IdentityChanged):
            state.identity = event.identity
            state.target_identity = event.version
            # Detach all before re-attaching, in arrival order: one by one, a session over
            # WEBSOCKET_MAX_QUERIES would have its accepted queries refused.
            subscriptions = list(state.subscriptions.items())
            for query_id, _ in subscriptions:
                self._unsubscribe(state, query_id, dropped)
            for query_id, sub in subscriptions:
                self._subscribe(state, query_id, sub)
        elif isinstance(event, MutationDone):
            state.owed().responses.append(event)
        elif isinstance(event, SessionClosed):
            for query_id in list(state.subscriptions):
                self._unsubscribe(state, query_id, dropped)
            del self.sessions[event.session]
            self._touched.discard(state)
        return dropped

    def pending(self, dirty: Iterable[Hashable]) -> list[QueryEntry]:
        """The queries a round runs: the invalidated ones still held, and every new one."""
        keys = (set(dirty) | self._unevaluated) & self.queries.keys()
        return [self.queries[key] for key in keys]

    def evaluated(self) -> None:
        """The round that ran ``pending`` committed: new queries have results now."""
        self._unevaluated.clear()

    def forget_results(self) -> None:
        """A round failed after computing results it never sent: send each one again."""
        for entry in self.queries.values():
            entry.digest = None

    def news(self, changed: Iterable[Hashable], ts: int, server_ts: int, *,
             held: Collection[SessionHandle] = ()) -> list[Delivery]:
        """Each session with news: its mutation responses, then one Transition to ``ts``.

        A ``held`` session is sent nothing yet; its news accumulates for a later round.
        """
        for key in changed:
            entry = self.queries.get(key)
            if entry is not None:
                for state, query_id in entry.subscribers:
                    state.owed().fresh.add(query_id)
                    self._touched.add(state)
        out = []
        touched, self._touched = self._touched, set()
        for state in touched:
            if not state.has_news():
                state.news = None
                continue
            if state.handle in held:
                self._touched.add(state)
                continue
            news, state.news = state.news or News(), None
            modifications = [self._modification(state, qid) for qid in sorted(news.fresh)]
            modifications += [protocol.query_removed(qid) for qid in sorted(news.removed)]
            end = protocol.StateVersion(state.target_query_set, state.target_identity, ts)
            messages: list[protocol.Outgoing] = [r.response(ts) for r in news.responses]
            messages.append(protocol.transition(state.version, end, modifications, server_ts))
            state.version = end
            out.append((state.handle, messages))
        return out

    def _modification(self, state: SessionState, query_id: int) -> protocol.Outgoing:
        refused = state.refused.get(query_id) if state.refused is not None else None
        if refused is not None:
            return protocol.query_failed(query_id, refused, None, [])
        return self.queries[state.keys[query_id]].modification(query_id)

    def _subscribe(self, state: SessionState, query_id: int, sub: Subscription) -> None:
        news = state.owed()
        news.fresh.add(query_id)
        news.removed.discard(query_id)
        limit = reactive_settings().WEBSOCKET_MAX_QUERIES
        if len(state.subscriptions) >= limit:
            state.refuse(query_id, sub,
                         f"Too many subscriptions on this connection (limit {limit}).")
            return
        try:
            args = sub.args
            decoded = decode_wire_args(args) if isinstance(args, list) else args
            journal_in = _journal(sub.journal)
            name = canonical_name(sub.path)
            key = (name, json.dumps(decoded, sort_keys=True, default=repr), state.identity,
                   json.dumps(journal_in) if journal_in else None)
        except Exception as exc:  # bad args or journal: fail this query only
            state.refuse(query_id, sub, str(exc))
            return
        entry = self.queries.get(key)
        if entry is None:
            entry = self.queries[key] = QueryEntry(key, name, decoded, state.identity,
                                                   journal_in)
            self._unevaluated.add(key)
        entry.subscribers.add((state, query_id))
        state.attach(query_id, sub, entry.key)  # the entry's key: one tuple for all holders

    def _unsubscribe(self, state: SessionState, query_id: int, dropped: list[Hashable]) -> None:
        key = state.detach(query_id)
        entry = self.queries.get(key) if key is not None else None
        if entry is None:
            return
        entry.subscribers.discard((state, query_id))
        if not entry.subscribers:
            del self.queries[entry.key]
            dropped.append(entry.key)


def _journal(text: str | None) -> list[str] | None:
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, list) or not all(isinstance(c, str) for c in data):
        raise protocol.ProtocolError("The journal is not one this server wrote.")
    return data
