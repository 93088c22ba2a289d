"""What a session tells the Reactor between rounds (the inbox events), and the handle the
Reactor answers it through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from reactive.functions.runtime import Outcome
from reactive.live import protocol
from reactive.types import Identity


class SessionHandle(Protocol):
    """What the Reactor needs of a session: a non-blocking, ordered ``deliver``."""

    def deliver(self, messages: list[protocol.Outgoing]) -> None: ...


@dataclass(frozen=True)
class AddRequest:
    query_id: int
    path: str
    args: Any  # the wire form (a list holding one encoded object) or already-decoded args
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
        return protocol.outcome_response("MutationResponse", self.request_id, self.outcome, ts)


@dataclass(frozen=True)
class SessionClosed:
    session: SessionHandle


InboxEvent = QuerySetChanged | IdentityChanged | MutationDone | SessionClosed
