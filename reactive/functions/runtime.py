"""The function runtime: the one place that resolves a function, validates its arguments,
picks its transaction, runs it and turns the result or error into what callers get.

``run``/``arun`` raise and return Python values (for code, tests and ``ctx.run_*``);
``execute``/``aexecute`` never raise and return an ``Outcome`` with wire-encoded values (for
the HTTP views, the websocket consumer, the CLI and Celery tasks).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connections, transaction

from reactive import values
from reactive.capture.readsets import ReadSet, recording
from reactive.capture.resolve import resolve
from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.exceptions import (
    ArgumentError,
    ExecutionError,
    FunctionError,
    ReactiveError,
    ReadOnlyError,
    RequestError,
    ReturnValueError,
    UntrackedReadError,
    ValueDecodingError,
    ValueEncodingError,
)
from reactive.functions import untracked
from reactive.functions.context import ActionCtx, MutationCtx, QueryCtx, SyncActionCtx
from reactive.functions.convert import to_value
from reactive.functions.definitions import FunctionDefinition
from reactive.functions.registry import Registry, registry
from reactive.functions.transaction import (
    Scope,
    action_scope,
    current_scope,
    in_thread,
    run_read_only,
    run_serializable,
)
from reactive.types import ANONYMOUS, FunctionKind, Identity

logger = logging.getLogger(__name__)

AnyDefinition = FunctionDefinition[Any, Any]
FunctionRef = str | AnyDefinition


@dataclass(frozen=True)
class Evaluation:
    """A query run by the Reactor: its outcome, what it read, and its pagination journal."""

    outcome: Outcome
    read_set: ReadSet
    journal: list[str]


@dataclass(frozen=True)
class Outcome:
    """The result of one call as an edge sends it: a wire-encoded value, or an error.

    ``error_data`` is set only for ``FunctionError`` (it becomes ``ConvexError.data``);
    ``http_status`` is 200 for function-level outcomes and 4xx for caller errors.
    """

    value: Any = None
    error: str | None = None
    error_data: Any = None
    has_error_data: bool = False
    code: str | None = None
    http_status: int = 200
    log_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class Runtime:
    """Runs functions from a registry on a database alias. ``runtime`` is the default one."""

    def __init__(self, functions: Registry = registry, using: str = "default") -> None:
        self.functions = functions
        self.using = using

    # -- raising API -----------------------------------------------------------------------

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

        Raises RequestError subclasses for unknown functions and bad arguments, FunctionError
        from user code, ExecutionError subclasses for conflicts and misuse; anything else the
        function raised propagates.
        """
        definition = self.resolve(ref, internal=internal or identity.is_admin)
        _check_kind(definition, expect)
        return self._invoke(definition, args or {}, identity, encode=False)

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
        definition = self.resolve(ref, internal=internal or identity.is_admin)
        _check_kind(definition, expect)
        if definition.is_async and current_scope() in (None, Scope.ACTION):
            return await self._run_async_action(definition, args or {}, identity, encode=False)
        return await in_thread(self._invoke, definition, args or {}, identity, encode=False)

    def resolve(self, ref: FunctionRef, *, internal: bool) -> AnyDefinition:
        if isinstance(ref, FunctionDefinition):
            if not (internal or ref.is_public):
                return self.functions.get(ref.name, internal=False)  # raises FunctionNotFound
            return ref
        return self.functions.get(ref, internal=internal)

    # -- non-raising API for edges ---------------------------------------------------------

    def execute(
        self,
        ref: FunctionRef,
        args: Mapping[str, Any] | None,
        identity: Identity = ANONYMOUS,
        *,
        kind: FunctionKind | None = None,
        internal: bool = False,
    ) -> Outcome:
        """Run a function on behalf of a client and describe the outcome; never raises.

        Internal functions are visible only to the admin identity, or when ``internal`` (the
        CLI, the scheduler). ``kind`` (when given) requires the function to be of that kind,
        as ``/api/query`` does.
        """
        started = time.perf_counter()
        try:
            definition = self.resolve(ref, internal=internal or identity.is_admin)
            _check_kind(definition, kind)
            if definition.is_async:
                value = async_to_sync(self._run_async_action)(
                    definition, args or {}, identity, encode=True
                )
            else:
                value = self._invoke(definition, args or {}, identity, encode=True)
        except Exception as exc:  # every failure becomes an Outcome
            return failure(exc, ref)
        finally:
            logger.debug(
                "function call function=%s ms=%.2f",
                _ref_name(ref), (time.perf_counter() - started) * 1000,
            )
        return Outcome(value=value)

    async def aexecute(
        self,
        ref: FunctionRef,
        args: Mapping[str, Any] | None,
        identity: Identity = ANONYMOUS,
        *,
        kind: FunctionKind | None = None,
    ) -> Outcome:
        """``execute`` for async callers (the websocket consumer)."""
        try:
            definition = self.resolve(ref, internal=identity.is_admin)
            _check_kind(definition, kind)
            if definition.is_async:
                value = await self._run_async_action(definition, args or {}, identity, encode=True)
            else:
                value = await in_thread(self._invoke, definition, args or {}, identity, True)
        except Exception as exc:
            return failure(exc, ref)
        return Outcome(value=value)

    # -- execution -------------------------------------------------------------------------

    # -- for the Reactor and the sync protocol ----------------------------------------------

    def evaluate(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity,
        journal: list[str] | None = None,
    ) -> Evaluation:
        """Run a query inside the caller's open read-only snapshot, recording its read set.

        For the Reactor's rounds: every query of a round sees the same snapshot. The query
        runs in a savepoint, so a failing one leaves the round's transaction usable. Never
        raises; failures are in ``outcome``.
        """
        ctx_journal: list[str] = []
        definition = None
        connection = connections[self.using]
        with recording(connection) as recorder:
            try:
                definition = self.resolve(ref, internal=identity.is_admin)
                _check_kind(definition, FunctionKind.QUERY)
                with transaction.atomic(using=self.using):
                    value = self._invoke(definition, args, identity, encode=True,
                                         journal=journal, journal_out=ctx_journal)
                outcome = Outcome(value=value)
            except Exception as exc:
                outcome = failure(exc, ref)
        try:  # views and functions to base tables; reads of untracked tables refused or warned
            with connection.cursor() as cursor:
                resolution = resolve(recorder.read_set(), cursor)
            if definition is not None:
                untracked.enforce(definition.name, definition, resolution, self.using)
            read_set = resolution.read_set
        except UntrackedReadError as exc:
            outcome, read_set = failure(exc, ref), resolution.read_set
        except Exception:
            logger.warning("read set not resolved; widening function=%s", _ref_name(ref),
                           exc_info=True)
            read_set = ReadSet(everything=True)
        return Evaluation(outcome, read_set, ctx_journal)

    def execute_once(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity, *,
        session_id: str, request_id: int,
    ) -> Outcome:
        """Run a client's mutation at most once per (session id, request id) (G2).

        A row written in the mutation's own transaction records the result; a re-sent request
        returns that result without running again. Failed mutations store nothing.
        """
        from reactive.models import SessionRequest

        try:
            definition = self.resolve(ref, internal=identity.is_admin)
            _check_kind(definition, FunctionKind.MUTATION)
            kwargs = _validate_args(definition, args)

            def attempt(_: int) -> Any:
                done = SessionRequest.objects.filter(
                    session_id=session_id, request_id=request_id
                ).values_list("result", flat=True).first()
                if done is not None:
                    return done["value"]
                value = self._call_body(definition, kwargs, identity, encode=True)
                SessionRequest.objects.create(
                    session_id=session_id, request_id=request_id, result={"value": value},
                    ts=clock.now(),
                )
                return value

            return Outcome(value=run_serializable(attempt, function=definition.name,
                                                  using=self.using))
        except Exception as exc:
            return failure(exc, ref)

    def _call_body(
        self, definition: AnyDefinition, kwargs: dict[str, Any], identity: Identity,
        encode: bool, journal: list[str] | None = None, journal_out: list[str] | None = None,
    ) -> Any:
        ctx = _context_for(definition, identity, self, journal)
        result = _finish(definition, definition.func(ctx, **kwargs), encode)
        if journal_out is not None and isinstance(ctx, QueryCtx):
            journal_out.extend(ctx.journal_out)
        return result

    def _invoke(
        self, definition: AnyDefinition, args: Mapping[str, Any], identity: Identity,
        encode: bool, journal: list[str] | None = None, journal_out: list[str] | None = None,
    ) -> Any:
        kwargs = _validate_args(definition, args)
        outer = current_scope()
        name = definition.name

        def body() -> Any:
            return self._call_body(definition, kwargs, identity, encode, journal, journal_out)

        if definition.kind is FunctionKind.QUERY:
            if outer in (Scope.QUERY, Scope.MUTATION):
                return body()
            return run_read_only(body, function=name, using=self.using)
        if definition.kind is FunctionKind.MUTATION:
            if outer is Scope.MUTATION:
                # A savepoint: if the caller catches this mutation's error, its writes go.
                with transaction.atomic(using=self.using):
                    return body()
            if outer is Scope.QUERY:
                raise ReadOnlyError(f"A query cannot run mutation '{name}'; queries only read.")
            return run_serializable(lambda attempt: body(), function=name, using=self.using)
        if outer in (Scope.QUERY, Scope.MUTATION):
            raise ExecutionError(
                f"Action '{name}' cannot run inside a {outer.value}: actions have side effects. "
                "Schedule it with ctx.scheduler.run_after(0, ...) instead."
            )
        if definition.is_async:
            return async_to_sync(self._run_async_action)(definition, args, identity, encode=encode)
        with action_scope(name):
            return body()

    async def _run_async_action(
        self, definition: AnyDefinition, args: Mapping[str, Any], identity: Identity, encode: bool
    ) -> Any:
        kwargs = _validate_args(definition, args)
        ctx = ActionCtx(identity, self)
        with action_scope(definition.name):
            result = await definition.func(ctx, **kwargs)
        return _finish(definition, result, encode)


def failure(exc: Exception, ref: FunctionRef) -> Outcome:
    """Describe an exception as clients should see it, logging what operators need."""
    name = _ref_name(ref)
    if isinstance(exc, RequestError):
        return Outcome(error=str(exc), code=exc.code, http_status=exc.http_status)
    if isinstance(exc, FunctionError):
        try:
            data = values.encode(to_value(exc.data))
        except ReactiveError as encode_exc:
            logger.error("function error data not encodable function=%s", name, exc_info=True)
            return Outcome(error=f"Uncaught Error: {encode_exc}", code=encode_exc.code)
        return Outcome(error=str(exc), error_data=data, has_error_data=True, code=exc.code)
    if isinstance(exc, (ExecutionError, ValueEncodingError, ValueDecodingError)):
        logger.error("function failed function=%s code=%s", name, exc.code, exc_info=exc)
        return Outcome(error=str(exc), code=exc.code)
    request_id = uuid.uuid4().hex[:16]
    logger.error("function crashed function=%s request_id=%s", name, request_id, exc_info=exc)
    message = f"[Request ID: {request_id}] Server Error"
    if _expose_details():
        message += f"\nUncaught {type(exc).__name__}: {exc}"
    return Outcome(error=message, code="InternalServerError")


def _expose_details() -> bool:
    configured = reactive_settings().EXPOSE_ERROR_DETAILS
    return bool(settings.DEBUG) if configured is None else configured


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
    journal: list[str] | None = None,
) -> Any:
    if definition.kind is FunctionKind.QUERY:
        return QueryCtx(identity, runner, journal)
    if definition.kind is FunctionKind.MUTATION:
        return MutationCtx(identity, runner)
    return ActionCtx(identity, runner) if definition.is_async else SyncActionCtx(identity, runner)


def _ref_name(ref: FunctionRef) -> str:
    return ref.name if isinstance(ref, FunctionDefinition) else str(ref)[:200]


runtime = Runtime()
