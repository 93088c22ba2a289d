"""Mutations in flight, per session: which sessions' Transitions must wait for a response.

A mutation commits in a worker thread and its ``MutationDone`` reaches the Reactor later. A
round whose snapshot already includes that commit must not send the session a Transition
before the ``MutationResponse`` (a client would apply its optimistic update on top of the
real value): such a session's news is held until the round that takes in the MutationDone.
"""

from __future__ import annotations

import threading
from typing import Any

from reactive.live.inbox import InboxEvent, MutationDone, SessionClosed, SessionHandle


class InFlight:
    """Registered by the session before its mutation runs (event loop), forgotten when a round
    takes in its MutationDone (round thread); shared under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[SessionHandle, int], str] = {}

    def started(self, handle: SessionHandle, session_id: str, request_id: int) -> None:
        """Called before the mutation starts, so a round that misses it began before."""
        with self._lock:
            self._running[(handle, request_id)] = session_id

    def taken(self, event: InboxEvent) -> None:
        """A round took in ``event``: a finished mutation, or a closed session, is no longer
        in flight."""
        with self._lock:
            if isinstance(event, MutationDone):
                self._running.pop((event.session, event.request_id), None)
            elif isinstance(event, SessionClosed):
                for key in [k for k in self._running if k[0] is event.session]:
                    del self._running[key]

    def committed(self, cursor: Any) -> set[SessionHandle]:
        """The sessions with a mutation in flight whose commit the round's snapshot includes.

        Must run after the snapshot is taken: a mutation registered later committed later. A
        committed mutation has its ``reactive_sessionrequest`` row (written in its own
        transaction); a failed one wrote nothing and holds nothing back.
        """
        return self.committed_among(cursor, self.running())

    def running(self) -> list[tuple[tuple[SessionHandle, int], str]]:
        """The registrations now: ((handle, request id), session id) each."""
        with self._lock:
            return list(self._running.items())

    @staticmethod
    def query(running: list[tuple[tuple[SessionHandle, int], str]]
              ) -> tuple[str, list[Any]] | None:
        """The statement that finds which of ``running`` committed (None: none to ask)."""
        if not running:
            return None
        return ("SELECT session_id, request_id FROM reactive_sessionrequest "
                "WHERE (session_id, request_id) IN "
                "(SELECT * FROM unnest(%s::varchar[], %s::bigint[]))",
                [[sid for _, sid in running], [rid for (_, rid), _ in running]])

    @staticmethod
    def read(cursor: Any, running: list[tuple[tuple[SessionHandle, int], str]]
             ) -> set[SessionHandle]:
        """``query``'s answer, from the cursor on its result."""
        done = set(cursor.fetchall())
        return {handle for (handle, rid), sid in running if (sid, rid) in done}

    def committed_since(self, cursor: Any, asked: list[tuple[tuple[SessionHandle, int], str]]
                        ) -> set[SessionHandle]:
        """``committed`` for the mutations registered since ``asked`` was read.

        A round that sends its in-flight question with its ``BEGIN`` reads the registrations
        before its snapshot exists; one registered in between may have committed before the
        snapshot was taken. Now that it is, the registrations not asked about are asked about
        (a second round trip, only when there are such).
        """
        seen = {key for key, _ in asked}
        return self.committed_among(cursor, [r for r in self.running() if r[0] not in seen])

    def committed_among(self, cursor: Any, running: list[tuple[tuple[SessionHandle, int], str]]
                        ) -> set[SessionHandle]:
        """Those of ``running`` whose commit the transaction's snapshot includes."""
        query = self.query(running)
        if query is None:
            return set()
        cursor.execute(*query)
        return self.read(cursor, running)
