"""The function runtime: the one path every call takes, from a ``Call`` to a result. It resolves
the function, checks its kind and arguments, picks its transaction, runs it, and checks,
converts and encodes what it returns.

Entry points differ only in what they hand back: ``call``/``acall`` an ``Outcome`` with
wire-encoded values, never raising (the HTTP views, the websocket session, the CLI);
``run``/``arun`` the Python value, raising on failure (your code, tests, ``ctx.run_*``, the
scheduler); ``evaluate`` an Outcome with the query's read set (the Reactor).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from reactive import values
from reactive.capture.readsets import ReadSet, recording
from reactive.capture.resolve import resolve
from reactive.clock import clock
from reactive.exceptions import (
    ArgumentError,
    ExecutionError,
    QueryTimeout,
    ReadOnlyError,
    RequestError,
    ReturnValueError,
    UntrackedReadError,
)
from reactive.functions import untracked
from reactive.functions.context import ActionCtx, MutationCtx, QueryCtx, SyncActionCtx
from reactive.functions.convert import to_value
from reactive.functions.definitions import AnyDefinition, FunctionDefinition, FunctionRef
from reactive.functions.logs import captured
from reactive.functions.outcome import Outcome, failure, ref_name
from reactive.functions.registry import Registry, registry
from reactive.functions.snapshots import (
    over_statement_limit,
    query_clock,
    query_savepoint,
    run_read_only,
)
from reactive.functions.transaction import (
    Scope,
    action_scope,
    current_scope,
    in_thread,
    run_serializable,
    transient,
)
from reactive.types import ANONYMOUS, FunctionKind, Identity

__all__ = ["Call", "Evaluation", "Outcome", "Runtime", "failure", "runtime"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """One function call as its caller asks for it.

    ``function`` is a name (``"chat:send"``) or the decorated object; ``args`` the decoded
    argument object. ``internal`` lets the call reach internal functions (the CLI, the
    scheduler, your code); the admin identity always may. ``expect`` requires the function to
    be of that kind, as ``/api/query`` and ``ctx.run_query`` do. ``journal`` holds the page
    ends a paginated query keeps across re-runs (sync protocol). ``once`` is ``(session id,
    request id)``: a mutation called with it runs at most once per pair, and a repeat returns
    the first result (guarantee G2, docs/guarantees.md).
    """

    function: FunctionRef
    args: Mapping[str, Any] = field(default_factory=dict)
    identity: Identity = ANONYMOUS
    internal: bool = False
    expect: FunctionKind | None = None
    journal: Sequence[str] | None = None
    once: tuple[str, int] | None = None


@dataclass(frozen=True)
class Evaluation:
    """A query run by the Reactor: its outcome, what it read, and its pagination journal."""

    outcome: Outcome
    read_set: ReadSet
    journal: list[str]


class Runtime:
    """Runs functions from a registry. ``runtime`` is the default one.

    Every entry point goes through ``_perform``. The only bridges between sync and async code
    are there (an ``async def`` action called from sync code) and in ``_aperform`` (anything
    else called from async code runs in a worker thread).
    """

    def __init__(self, functions: Registry = registry) -> None:
        self.functions = functions

    # -- for edges: describe, never raise ---------------------------------------------------

    @captured
    def call(self, call: Call) -> Outcome:
        """Run a call on behalf of a client and describe the outcome; never raises.

        The Outcome's values are wire-encoded. A failure is logged as ``failure`` describes.
        """
        started = time.perf_counter()
        try:
            return Outcome(value=self._perform(call, self._resolve(call), encode=True))
        except Exception as exc:  # every failure becomes an Outcome
            return failure(exc, call.function)
        finally:
            _log_duration(call, started)

    @captured
    async def acall(self, call: Call) -> Outcome:
        """``call`` for async callers: database work runs in a worker thread, an ``async def``
        action on the caller's event loop."""
        started = time.perf_counter()
        try:
            return Outcome(value=await self._aperform(call, encode=True))
        except Exception as exc:
            return failure(exc, call.function)
        finally:
            _log_duration(call, started)

    @captured
    def evaluate(self, call: Call) -> Evaluation:
        """Run a query inside the caller's open read-only snapshot, recording its read set.

        For the Reactor's rounds: every query of a round sees the same snapshot. The query
        runs under a savepoint (``query_savepoint``: the snapshot's shared one, when it was
        opened by ``run_snapshot``), so a failing one leaves the round's transaction usable. The
        function must be a query. Failures are in ``outcome``, except a connection's or
        server's (``transient``): that one is raised, since it says nothing about the query and
        the whole round must be retried.
        """
        journal: list[str] = []
        definition: AnyDefinition | None = None
        with recording(connections[DEFAULT_DB_ALIAS]) as recorder:
            try:
                definition = self._resolve(call, FunctionKind.QUERY)
                with query_savepoint():
                    value = self._perform(call, definition, encode=True, journal_out=journal)
                outcome = Outcome(value=value)
            except Exception as exc:
                if transient(exc):
                    raise
                over = over_statement_limit(exc)
                if over is not None:  # one slow query fails alone; the round goes on
                    timeout = QueryTimeout(ref_name(call.function), over)
                    timeout.__cause__ = exc
                    exc = timeout
                outcome = failure(exc, call.function)
        outcome, read_set = _base_reads(call, definition, recorder.read_set(), outcome)
        return Evaluation(outcome, read_set, journal)

    # -- for code: return Python values, raise ---------------------------------------------

    def run(
        self,
        ref: FunctionRef,
        args: Mapping[str, Any] | None = None,
        identity: Identity = ANONYMOUS,
        *,
        internal: bool = True,
        expect: FunctionKind | None = None,
    ) -> Any:
        """Run a function and return its result as a Convex value (dicts, lists, scalars).

        The path of ``call``, but internal functions are visible by default and failures
        raise: RequestError subclasses for unknown functions and bad arguments, FunctionError
        from user code, ExecutionError subclasses for conflicts and misuse; anything else the
        function raised propagates.
        """
        call = Call(ref, args or {}, identity, internal=internal, expect=expect)
        return self._perform(call, self._resolve(call), encode=False)

    async def arun(
        self,
        ref: FunctionRef,
        args: Mapping[str, Any] | None = None,
        identity: Identity = ANONYMOUS,
        *,
        internal: bool = True,
        expect: FunctionKind | None = None,
    ) -> Any:
        """``run`` for async callers: database work runs in a worker thread."""
        call = Call(ref, args or {}, identity, internal=internal, expect=expect)
        return await self._aperform(call, encode=False)

    def execute(
        self, ref: FunctionRef, args: Mapping[str, Any] | None,
        identity: Identity = ANONYMOUS, *, kind: FunctionKind | None = None,
        internal: bool = False,
    ) -> Outcome:
        """Deprecated: ``call(Call(ref, args, identity, internal=..., expect=kind))``."""
        warnings.warn("Runtime.execute() is deprecated; use runtime.call(Call(...)) instead.",
                      DeprecationWarning, stacklevel=2)
        return self.call(Call(ref, args or {}, identity, internal=internal, expect=kind))

    def resolve(self, ref: FunctionRef, *, internal: bool) -> AnyDefinition:
        """The definition ``ref`` names; FunctionNotFound if there is none the caller may see."""
        if isinstance(ref, FunctionDefinition):
            if not (internal or ref.is_public):
                return self.functions.get(ref.name, internal=False)  # raises FunctionNotFound
            return ref
        return self.functions.get(ref, internal=internal)

    # -- the one path ----------------------------------------------------------------------

    def _resolve(self, call: Call, expect: FunctionKind | None = None) -> AnyDefinition:
        definition = self.resolve(call.function, internal=call.internal or call.identity.is_admin)
        _check_kind(definition, expect or call.expect)
        return definition

    def _perform(
        self, call: Call, definition: AnyDefinition, *, encode: bool,
        journal_out: list[str] | None = None,
    ) -> Any:
        kwargs = _validate_args(definition, call.args)

        def body() -> Any:
            if definition.is_async:  # an async action called from sync code
                return async_to_sync(self._run_async)(definition, kwargs, call.identity, encode)
            ctx = _context_for(definition, call.identity, self, call.journal)
            result = _finish(definition, definition.func(ctx, **kwargs), encode)
            if journal_out is not None and isinstance(ctx, QueryCtx):
                journal_out.extend(ctx.journal_out)
            return result

        if call.once is not None and definition.kind is FunctionKind.MUTATION:
            body = _at_most_once(body, *call.once)
        return _in_transaction(definition, body)

    async def _aperform(self, call: Call, *, encode: bool) -> Any:
        definition = self._resolve(call)
        if definition.is_async and current_scope() in (None, Scope.ACTION):
            kwargs = _validate_args(definition, call.args)
            return await self._run_async(definition, kwargs, call.identity, encode)
        return await in_thread(self._perform, call, definition, encode=encode)

    async def _run_async(
        self, definition: AnyDefinition, kwargs: dict[str, Any], identity: Identity, encode: bool
    ) -> Any:
        ctx = ActionCtx(identity, self)
        with action_scope(definition.name):
            result = await definition.func(ctx, **kwargs)
        return _finish(definition, result, encode)


def _in_transaction(definition: AnyDefinition, body: Callable[[], Any]) -> Any:
    """Run ``body`` in the transaction its kind needs, given the scope it is called from
    (the table in docs/internals/transactions.md)."""
    outer, name = current_scope(), definition.name
    if definition.kind is FunctionKind.QUERY:
        if outer is Scope.MUTATION:
            return body()  # part of the mutation, whose time is not limited
        with query_clock(name):  # its time in all; inline in a round or a calling query
            return body() if outer is Scope.QUERY else run_read_only(body, function=name)
    if definition.kind is FunctionKind.MUTATION:
        if outer is Scope.MUTATION:
            # A savepoint: if the caller catches this mutation's error, its writes go.
            with transaction.atomic(using=DEFAULT_DB_ALIAS):
                return body()
        if outer is Scope.QUERY:
            raise ReadOnlyError(f"A query cannot run mutation '{name}'; queries only read.")
        return run_serializable(lambda attempt: body(), function=name)
    if outer in (Scope.QUERY, Scope.MUTATION):
        raise ExecutionError(
            f"Action '{name}' cannot run inside a {outer.value}: actions have side effects. "
            "Schedule it with ctx.scheduler.run_after(0, ...) instead."
        )
    if definition.is_async:
        return body()  # its coroutine enters the action scope on the loop it runs on
    with action_scope(name):
        return body()


def _base_reads(
    call: Call, definition: AnyDefinition | None, recorded: ReadSet, outcome: Outcome
) -> tuple[Outcome, ReadSet]:
    """The read set on base tables (views and SQL functions resolved from the catalog), with
    reads of untracked tables refused or warned; one that cannot be resolved widens to all."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            resolution = resolve(recorded, cursor)
        if definition is not None:
            untracked.enforce(definition.name, definition, resolution)
        return outcome, resolution.read_set
    except UntrackedReadError as exc:
        return failure(exc, call.function), resolution.read_set
    except Exception:
        logger.warning("read set not resolved; widening function=%s", ref_name(call.function),
                       exc_info=True)
        return outcome, ReadSet(everything=True)


def _at_most_once(body: Callable[[], Any], session_id: str, request_id: int) -> Callable[[], Any]:
    """``body`` that records its result in its own transaction, keyed by the request; a repeat
    returns the recorded result without running again. Failed mutations record nothing."""
    from reactive.models import SessionRequest

    def once() -> Any:
        done = SessionRequest.objects.filter(
            session_id=session_id, request_id=request_id
        ).values_list("result", flat=True).first()
        if done is not None:
            return done["value"]
        value = body()
        SessionRequest.objects.create(
            session_id=session_id, request_id=request_id, result={"value": value}, ts=clock.now()
        )
        return value

    return once


def _check_kind(definition: AnyDefinition, kind: FunctionKind | None) -> None:
    if kind is not None and definition.kind is not kind:
        raise RequestError(
            f"'{definition.name}' is a {definition.kind}, not a {kind}; "
            f"call it as a {definition.kind}."
        )


def _validate_args(definition: AnyDefinition, args: Mapping[str, Any]) -> dict[str, Any]:
    kwargs, problems = definition.arguments.validate(args)
    if kwargs is None:
        raise ArgumentError(definition.name, problems)
    return kwargs


def _finish(definition: AnyDefinition, result: Any, encode: bool) -> Any:
    """Validate a result against ``returns=``, convert it to a Convex value, and encode it for
    the wire when asked (edges) rather than returning Python values (code)."""
    converted = to_value(_check_returns(definition, result))
    return values.encode(converted) if encode else converted


def _check_returns(definition: AnyDefinition, result: Any) -> Any:
    schema = definition.returns_schema
    if schema is None:
        return result
    validated, problems = schema.validate(result)
    if problems:
        raise ReturnValueError(definition.name, problems)
    return validated


def _context_for(
    definition: AnyDefinition, identity: Identity, runner: Runtime,
    journal: Sequence[str] | None = None,
) -> Any:
    if definition.kind is FunctionKind.QUERY:
        return QueryCtx(identity, runner, journal)
    if definition.kind is FunctionKind.MUTATION:
        return MutationCtx(identity, runner)
    return ActionCtx(identity, runner) if definition.is_async else SyncActionCtx(identity, runner)


def _log_duration(call: Call, started: float) -> None:
    logger.debug("function call function=%s ms=%.2f",
                 ref_name(call.function), (time.perf_counter() - started) * 1000)


runtime = Runtime()
