"""Transactions for functions: SERIALIZABLE with retry for mutations (the whole retry policy),
the write guard for actions, and what every function transaction shares; queries' snapshots
build on it in :mod:`reactive.functions.snapshots`.

Isolation is set on the psycopg 3 connection before Django's ``atomic()`` begins, so each
transaction starts with a single ``BEGIN ISOLATION LEVEL ...`` (psycopg emits it lazily).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from psycopg import IsolationLevel

from reactive.conf import reactive_settings
from reactive.exceptions import ConflictError, ExecutionError, ReadOnlyError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs that mean "the transaction lost a race; running it again may succeed"
# (PostgreSQL docs, "Serialization Failure Handling").
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
RETRYABLE = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
# SQLSTATE classes of connection and server trouble, not of what a function asked: connection
# exceptions, insufficient resources, operator intervention (57P01 terminated, 57P02 crash,
# 57P03 starting up), system errors, internal errors. Class 57's 57014 (a statement timeout or a
# cancel) is not among them: a query over its timeout would only time out again.
TRANSIENT_CLASSES = ("08", "53", "57P", "58", "XX")


class Scope(enum.Enum):
    """What kind of transaction the current call runs in (None outside any function)."""

    QUERY = "query"
    MUTATION = "mutation"
    ACTION = "action"


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "reactive_scope", default=None
)


def current_scope() -> Scope | None:
    """The transaction scope of the function running in this context, if any."""
    return _scope.get()


@contextlib.contextmanager
def scope(value: Scope) -> Iterator[None]:
    token = _scope.set(value)
    try:
        yield
    finally:
        _scope.reset(token)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, looking through Django's wrapping of psycopg's."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = seen.__cause__
    return None


def transient(exc: BaseException) -> bool:
    """Whether a database error is the connection's or the server's, not the function's.

    Such an error says nothing about the function's result: running it again, on a healthy
    connection, may well succeed. psycopg reports a lost or closed connection without a
    SQLSTATE, as an OperationalError or InterfaceError.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    state = sqlstate(exc)
    if state is None:
        return isinstance(exc, OperationalError)
    return state.startswith(TRANSIENT_CLASSES)


# Called after each lost race with (function, SQLSTATE, gave_up): metrics count them here.
_conflict_listeners: list[Callable[[str, str, bool], None]] = []


def add_conflict_listener(listener: Callable[[str, str, bool], None]) -> None:
    """Call ``listener(function, sqlstate, gave_up)`` after every lost race of a mutation:
    ``gave_up`` is True when it was the last attempt (ConflictError follows). Idempotent."""
    if listener not in _conflict_listeners:
        _conflict_listeners.append(listener)


def _lost_race(function: str, state: str, gave_up: bool) -> None:
    for listener in _conflict_listeners:
        try:
            listener(function, state, gave_up)
        except Exception:  # a listener's bug must not change the mutation's outcome
            logger.exception("conflict listener failed function=%s", function)


def run_serializable(fn: Callable[[int], T], *, function: str) -> T:
    """Run ``fn(attempt)`` in a SERIALIZABLE transaction, retrying lost races.

    On SQLSTATE 40001 (serialization failure) or 40P01 (deadlock) the transaction is rolled
    back (with its ``on_commit`` callbacks) and ``fn`` runs again after a capped exponential
    backoff with full jitter; only the last attempt can commit. After
    ``MUTATION_MAX_ATTEMPTS`` attempts it raises ConflictError. Any other exception rolls back
    and propagates unchanged. Must not be called inside an outer ``atomic()`` block.
    """
    require_no_outer_transaction(function)
    conf = reactive_settings()
    for attempt in range(1, conf.MUTATION_MAX_ATTEMPTS + 1):
        try:
            with (
                isolation(IsolationLevel.SERIALIZABLE, read_only=False),
                transaction.atomic(using=DEFAULT_DB_ALIAS),
                scope(Scope.MUTATION),
            ):
                return fn(attempt)
        except DatabaseError as exc:
            state = sqlstate(exc)
            if state not in RETRYABLE:
                raise
            assert state is not None
            detail = _detail(exc)
            _lost_race(function, state, attempt == conf.MUTATION_MAX_ATTEMPTS)
            if attempt == conf.MUTATION_MAX_ATTEMPTS:
                logger.error(
                    "mutation conflict function=%s attempts=%d sqlstate=%s detail=%s",
                    function, attempt, state, detail,
                )
                raise ConflictError(function, attempt, state) from exc
            logger.warning(
                "mutation retry function=%s attempt=%d sqlstate=%s detail=%s",
                function, attempt, state, detail,
            )
            time.sleep(backoff(attempt))
    raise AssertionError("unreachable: MUTATION_MAX_ATTEMPTS >= 1")  # pragma: no cover


def backoff(attempt: int) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): full jitter over a capped doubling."""
    conf = reactive_settings()
    cap = min(conf.MUTATION_RETRY_MAX_DELAY, conf.MUTATION_RETRY_BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(0, cap)


@contextlib.contextmanager
def action_scope(function: str) -> Iterator[None]:
    """Run an action's body: direct ORM writes in it (any thread it hands work to included,
    since the scope is a context variable) raise ReadOnlyError; mutations it calls run in
    their own scope and may write."""
    token = _action.set(function)
    try:
        with scope(Scope.ACTION):
            yield
    finally:
        _action.reset(token)


def guard_writes(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """A Django ``execute_wrapper`` on every connection (``reactive.apps``): an action's
    direct writes raise ReadOnlyError."""
    if _scope.get() is Scope.ACTION and _writes(sql):
        raise ReadOnlyError(
            f"Action '{_action.get()}' wrote to the database directly; actions may only read. "
            "Call a mutation with ctx.run_mutation(...) to write."
        )
    return execute(sql, params, many, context)


_action: contextvars.ContextVar[str] = contextvars.ContextVar("reactive_action", default="")
_WRITE_WORDS = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE)\b", re.IGNORECASE)


def _writes(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in {"SELECT", "SHOW", "EXPLAIN", "VALUES", "SAVEPOINT", "RELEASE"}:
        return False
    if head == "WITH":  # a CTE may hide a data-modifying statement
        return bool(_WRITE_WORDS.search(sql))
    return True


def require_no_outer_transaction(function: str) -> None:
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        raise ExecutionError(
            f"'{function}' was called inside an outer transaction.atomic() block; functions "
            "choose their own isolation level and must start their own transaction. Call it "
            "outside atomic() (and exempt the view from ATOMIC_REQUESTS)."
        )


@contextlib.contextmanager
def isolation(level: IsolationLevel, *, read_only: bool) -> Iterator[None]:
    connection = connections[DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    raw = connection.connection
    previous = (raw.isolation_level, raw.read_only)
    raw.isolation_level, raw.read_only = level, read_only
    try:
        yield
    finally:
        # The connection may have been closed by an error; only restore a live one.
        if connection.connection is raw and not raw.closed:
            raw.isolation_level, raw.read_only = previous


def _detail(exc: BaseException) -> str:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    return str(getattr(diag, "message_detail", None) or "")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ORM work in a worker thread, tidying that thread's connection before and
    after (threads from the pool outlive requests, so Django never closes them itself)."""

    def call() -> T:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()
