"""The Reactor's bookkeeping: distinct live queries, per-session views, and inbox events."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reactive.functions.runtime import Outcome
from reactive.live import protocol
from reactive.types import ANONYMOUS, Identity


class SessionHandle(Protocol):
    """What the Reactor needs of a connection: a non-blocking, ordered ``deliver``."""

    def deliver(self, messages: list[protocol.Outgoing]) -> None: ...


@dataclass(frozen=True)
class AddRequest:
    query_id: int
    path: str
    args: Any
    journal: str | None


@dataclass(frozen=True)
class QuerySetChanged:
    session: SessionHandle
    version: int
    adds: tuple[AddRequest, ...]
    removes: tuple[int, ...]


@dataclass(frozen=True)
class IdentityChanged:
    session: SessionHandle
    version: int
    identity: Identity


@dataclass(frozen=True)
class MutationDone:
    """A finished mutation, answered by the next round and then a Transition.

    A committed one waits for a snapshot that includes it (G4). A failed one needs the
    Transition too: the Rust/Python client completes failed mutations only on the next one.
    """

    session: SessionHandle
    request_id: int
    outcome: Outcome

    def response(self, ts: int) -> dict[str, Any]:
        outcome = self.outcome
        if not outcome.ok:
            return protocol.function_response(
                "MutationResponse", self.request_id, ok=False, value=outcome.error,
                log_lines=outcome.log_lines, error_data=outcome.error_data,
                has_error_data=outcome.has_error_data,
            )
        return protocol.function_response(
            "MutationResponse", self.request_id, ok=True, value=outcome.value,
            log_lines=outcome.log_lines, ts=ts,
        )


@dataclass(frozen=True)
class SessionClosed:
    session: SessionHandle


InboxEvent = QuerySetChanged | IdentityChanged | MutationDone | SessionClosed


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
    value_text: str | None = None
    digest: bytes | None = None
    journal_out: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    path: str
    args: Any
    journal: str | None


@dataclass(eq=False)
class SessionState:
    """The Reactor's view of one connection: its queries and what it has been sent."""

    handle: SessionHandle
    identity: Identity = ANONYMOUS
    version: protocol.StateVersion = protocol.INITIAL_VERSION
    target_query_set: int = 0
    target_identity: int = 0
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    keys: dict[int, Hashable] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    fresh: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    responses: list[MutationDone] = field(default_factory=list)

    def attach(self, query_id: int, path: str, args: Any, journal: str | None,
               key: Hashable) -> None:
        self.subscriptions[query_id] = Subscription(path, args, journal)
        self.keys[query_id] = key

    def refuse(self, query_id: int, path: str, args: Any, journal: str | None,
               message: str) -> None:
        self.subscriptions[query_id] = Subscription(path, args, journal)
        self.refused[query_id] = message

    def detach(self, query_id: int) -> Hashable | None:
        self.subscriptions.pop(query_id, None)
        self.refused.pop(query_id, None)
        return self.keys.pop(query_id, None)

    def has_news(self) -> bool:
        return bool(
            self.fresh or self.removed or self.responses
            or self.target_query_set != self.version.query_set
            or self.target_identity != self.version.identity
        )

    def clear_news(self) -> None:
        self.fresh.clear()
        self.removed.clear()
        self.responses.clear()
