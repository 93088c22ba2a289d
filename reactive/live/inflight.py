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
        with self._lock:
            running = list(self._running.items())
        if not running:
            return set()
        cursor.execute(
            "SELECT session_id, request_id FROM reactive_sessionrequest "
            "WHERE (session_id, request_id) IN "
            "(SELECT * FROM unnest(%s::varchar[], %s::bigint[]))",
            [[sid for _, sid in running], [rid for (_, rid), _ in running]],
        )
        done = set(cursor.fetchall())
        return {handle for (handle, rid), sid in running if (sid, rid) in done}
