"""One sync-protocol session: the client's versions, identity and requests, in arrival order.

The session registers itself with the Reactor and is the handle the Reactor delivers to.
Query-set and identity changes go to the Reactor, which answers with Transitions. Mutations
run one at a time in arrival order, de-duplicated on (sessionId, requestId); the Reactor answers
each in its next round, followed by a Transition: for a committed one, the first round whose
snapshot includes it (read-your-writes).
Actions run concurrently and answer at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from reactive import values
from reactive.auth.identity import identity_from_admin_key, identity_from_jwt
from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.exceptions import (
    AuthenticationError,
    AuthRejected,
    Overloaded,
    ProtocolError,
    ReactiveError,
)
from reactive.functions.arguments import decode_wire_args
from reactive.functions.runtime import Call, failure, runtime
from reactive.functions.transaction import in_thread
from reactive.live import protocol
from reactive.live.inbox import (
    AddRequest,
    IdentityChanged,
    MutationDone,
    QuerySetChanged,
    SessionClosed,
)
from reactive.live.reactor import Reactor, get_reactor
from reactive.live.revalidation import cookie_watch
from reactive.types import ANONYMOUS, FunctionKind, Identity

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW_NS = 60 * 10**9


class ClientSession:
    """Protocol state of one connection; ``send`` queues a message to the client in order.

    It is the Reactor's ``SessionHandle`` for this connection: ``open`` registers it, ``close``
    unregisters it, and the Reactor's messages go out through ``deliver``.
    """

    # Slots: one of these per open socket; no per-instance dict.
    __slots__ = (
        "_expires_at",
        "_expiry",
        "_max_pending",
        "_mutations",
        "_open",
        "_reactor",
        "_reject",
        "_revoked",
        "_tasks",
        "_worker",
        "cookie_identity",
        "cookie_session",
        "identity",
        "identity_version",
        "query_ids",
        "query_set_version",
        "send",
        "session_id",
    )

    def __init__(self, send: Callable[[protocol.Outgoing], None], cookie_identity: Identity,
                 max_pending: int, reactor: Reactor | None = None, *,
                 cookie_session: str | None = None,
                 reject: Callable[[], None] | None = None) -> None:
        self._reactor = reactor
        self.send = send
        self.cookie_identity = cookie_identity
        self.cookie_session = cookie_session  # the Django session key the cookie carried
        self.identity = cookie_identity
        self._reject = reject  # ends the connection after an AuthError it was not asked for
        self._expires_at: float | None = None  # when the accepted token stops being valid
        self._expiry: asyncio.TimerHandle | None = None
        self._revoked = False  # the identity is no longer valid: nothing more goes out
        self.session_id: str | None = None
        self.query_set_version = 0
        self.identity_version = 0
        self.query_ids: set[int] = set()
        # Mutations waiting to run, and the task running them: both exist only while there
        # are mutations (an idle session holds no task, no queue, no action set).
        self._max_pending = max_pending
        self._mutations: deque[protocol.Mutation] | None = None
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._open = False

    @property
    def reactor(self) -> Reactor:
        if self._reactor is None:
            self._reactor = get_reactor()
        return self._reactor

    def open(self) -> None:
        """Start serving (on the event loop): register with the Reactor."""
        self._open = True
        if not self.identity.is_anonymous:
            self.reactor.post(IdentityChanged(self, 0, self.identity))
            if self.cookie_session:
                cookie_watch().watch(self, self.cookie_session, self.identity)

    def close(self) -> None:
        """Stop: cancel running work and unregister from the Reactor."""
        for task in [self._worker, *(self._tasks or ())]:
            if task is not None:
                task.cancel()
        self._mutations = None
        if self._expiry is not None:
            self._expiry.cancel()
        if self.cookie_session:
            cookie_watch().unwatch(self)
        if self._open:
            self._open = False
            self.reactor.post(SessionClosed(self))

    def deliver(self, messages: list[protocol.Outgoing]) -> None:
        """The Reactor's messages for this session, queued to the client in order; none once
        its identity is no longer valid."""
        if self._expires_at is not None and time.time() > self._expires_at:
            self._expire()  # the timer is due: do not wait for it
        if self._revoked:
            return
        for message in messages:
            self.send(message)

    async def handle(self, message: Any) -> None:
        """Dispatch one parsed message; ProtocolError and AuthRejected end the session."""
        if isinstance(message, protocol.Connect):
            self._connect(message)
        elif self.session_id is None and not isinstance(message, protocol.Event):
            raise ProtocolError("The first message must be Connect.")
        elif isinstance(message, protocol.ModifyQuerySet | protocol.Mutation | protocol.Action):
            self._check_token_fresh()
        if isinstance(message, protocol.ModifyQuerySet):
            self._modify(message)
        elif isinstance(message, protocol.Mutation):
            self._queue_mutation(message)
        elif isinstance(message, protocol.Action):
            if self._tasks is None:
                self._tasks = set()
            task = asyncio.get_running_loop().create_task(self._action(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(message, protocol.Authenticate):
            await self._authenticate(message)

    def _check_token_fresh(self) -> None:
        """A token that expired since it was accepted: AuthError (not attempted) and close, so
        the npm client fetches a fresh token and reconnects (protocol §5)."""
        if self._revoked:
            raise AuthRejected("token expired")
        if self._expires_at is not None and time.time() > self._expires_at:
            self._revoked = True
            self.send(protocol.auth_error("The token expired.", self.identity_version, False))
            raise AuthRejected("token expired")

    def _arm_expiry(self) -> None:
        """Time the accepted token's end (its ``exp`` plus ``AUTH_LEEWAY``, the rule it was
        accepted by): then AuthError and close, whether or not the client is sending."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._expires_at = _token_deadline(self.identity)
        if self._expires_at is not None:
            delay = max(0.0, self._expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        if self._revoked:
            return
        self._revoked = True
        logger.info("websocket token expired session=%s", self.session_id)
        self.send(protocol.auth_error("The token expired.", self.identity_version, False))
        if self._reject is not None:
            self._reject()

    def cookie_revoked(self) -> None:
        """The cookie's Django session no longer holds (logged out, flushed, expired, user
        deactivated or password changed): the connection goes on as anonymous, as an HTTP
        request with that cookie does, unless a token identity is in use."""
        uses_cookie = self.identity == self.cookie_identity
        self.cookie_identity = ANONYMOUS
        if uses_cookie and not self.identity.is_anonymous:
            self.identity = ANONYMOUS
            self.reactor.post(IdentityChanged(self, self.identity_version, ANONYMOUS))

    def _connect(self, message: protocol.Connect) -> None:
        if self.session_id is not None:
            raise ProtocolError("Connect was sent twice on one connection.")
        self.session_id = message.sessionId
        if message.maxObservedTimestamp:
            try:
                seen = values.decode_ts(message.maxObservedTimestamp)
            except ReactiveError:
                raise ProtocolError("maxObservedTimestamp is not a timestamp.") from None
            # Never go backwards for this client; ignore a clock far in the future.
            if seen <= time.time_ns() + MAX_CLOCK_SKEW_NS:
                clock.advance_to(seen)

    def _modify(self, message: protocol.ModifyQuerySet) -> None:
        if message.baseVersion != self.query_set_version:
            raise ProtocolError(
                f"BaseVersionMismatch: ModifyQuerySet has baseVersion {message.baseVersion}, "
                f"the server has {self.query_set_version}."
            )
        if message.newVersion <= message.baseVersion:
            raise ProtocolError("ModifyQuerySet newVersion must be greater than baseVersion.")
        adds: list[AddRequest] = []
        removes: list[int] = []
        for change in message.modifications:
            if isinstance(change, protocol.AddQuery):
                if change.queryId in self.query_ids:
                    raise ProtocolError(f"Query {change.queryId} was added twice.")
                self.query_ids.add(change.queryId)
                adds.append(AddRequest(change.queryId, change.udfPath, change.args,
                                       change.journal))
            else:
                if change.queryId not in self.query_ids:
                    raise ProtocolError(f"Query {change.queryId} was removed but never added.")
                self.query_ids.discard(change.queryId)
                removes.append(change.queryId)
        self.query_set_version = message.newVersion
        self.reactor.post(QuerySetChanged(self, message.newVersion, tuple(adds),
                                          tuple(removes)))

    async def _authenticate(self, message: protocol.Authenticate) -> None:
        if message.baseVersion != self.identity_version:
            raise ProtocolError(
                f"Authenticate has baseVersion {message.baseVersion}, the server has "
                f"{self.identity_version}."
            )
        try:
            identity = await in_thread(_identity_for, message, self.cookie_identity)
        except AuthenticationError as exc:
            self.send(protocol.auth_error(str(exc), self.identity_version, True))
            raise AuthRejected(str(exc)) from None
        self.identity_version += 1
        self.identity = identity
        self._arm_expiry()
        self.reactor.post(IdentityChanged(self, self.identity_version, identity))

    def _queue_mutation(self, message: protocol.Mutation) -> None:
        """Run after the mutations before it, one at a time; a task only while some wait."""
        if self._mutations is None:
            self._mutations = deque()
        if len(self._mutations) >= self._max_pending:
            raise Overloaded("Too many mutations in flight on this connection.")
        self._mutations.append(message)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run_mutations())

    async def _run_mutations(self) -> None:
        try:
            while self._mutations:
                await self._run_mutation(self._mutations.popleft())
        finally:
            # No await between the emptiness check above and here: a mutation queued later
            # finds no worker and starts one.
            self._worker = None
            if not self._mutations:
                self._mutations = None

    async def _run_mutation(self, message: protocol.Mutation) -> None:
        identity, session_id = self.identity, self.session_id or ""
        try:
            args = decode_wire_args(message.args)
        except ReactiveError as exc:
            outcome = failure(exc, message.udfPath)
        else:
            # Before it can commit: a round that includes the commit then holds this
            # session's Transitions until it has taken in the MutationDone (G4).
            self.reactor.mutations.started(self, session_id, message.requestId)
            outcome = await runtime.acall(Call(
                message.udfPath, args, identity, expect=FunctionKind.MUTATION,
                once=(session_id, message.requestId),
            ))
        # Failures go through the Reactor too: the Rust/Python client completes even a
        # failed mutation only on a Transition after its response (§4.5).
        self.reactor.post(MutationDone(self, message.requestId, outcome))

    async def _action(self, message: protocol.Action) -> None:
        try:
            args = decode_wire_args(message.args)
        except ReactiveError as exc:
            outcome = failure(exc, message.udfPath)
        else:
            outcome = await runtime.acall(Call(message.udfPath, args, self.identity,
                                               expect=FunctionKind.ACTION))
        self.send(protocol.outcome_response("ActionResponse", message.requestId, outcome))


def _token_deadline(identity: Identity) -> float | None:
    """When a token identity stops being valid (``exp`` plus the leeway); None for identities
    without an expiry (anonymous, cookie, admin)."""
    if identity.is_admin or not identity.claims:
        return None
    expires = (identity.claims_dict() or {}).get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return None
    return float(expires) + reactive_settings().AUTH_LEEWAY


def _identity_for(message: protocol.Authenticate, cookie_identity: Identity) -> Identity:
    if message.tokenType == "None":
        return cookie_identity
    if not message.value:
        raise AuthenticationError(f"Authenticate with tokenType {message.tokenType} needs a value.")
    if message.tokenType == "Admin":
        return identity_from_admin_key(message.value, acting_as=message.impersonating)
    return identity_from_jwt(message.value)

