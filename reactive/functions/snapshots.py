"""Queries' read-only snapshots: one per query (``run_read_only``) or one shared by a Reactor
round (``run_snapshot``, ``query_savepoint``, ``export_snapshot``), and the time a query may
take (``QUERY_STATEMENT_TIMEOUT``): PostgreSQL cancels any one statement over it, and a query
that has run for that long gets no further statement (``query_clock``)."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus

from reactive.conf import reactive_settings
from reactive.exceptions import QueryTimeout, ReadOnlyError
from reactive.functions.transaction import (
    Scope,
    isolation,
    require_no_outer_transaction,
    scope,
    sqlstate,
)

T = TypeVar("T")

READ_ONLY_SQL_TRANSACTION = "25006"
QUERY_CANCELED = "57014"  # a statement timeout, or a cancel request (pg_cancel_backend)


def run_read_only(fn: Callable[[], T], *, function: str) -> T:
    """Run ``fn`` in a REPEATABLE READ READ ONLY transaction (one consistent snapshot).

    A write inside raises ReadOnlyError naming the function; a statement over
    ``QUERY_STATEMENT_TIMEOUT``, QueryTimeout. With a limit, the transaction's ``BEGIN`` is
    ours and carries it (psycopg would send its own ``BEGIN`` alone, so this costs no round
    trip more; in autocommit it sends none, and Django's ``atomic`` still ends ours).
    """
    try:
        with _read_only_transaction(function):
            limit = _statement_limit()
            if limit:
                raw = connections[DEFAULT_DB_ALIAS].connection
                raw.autocommit = True  # idle still, as in run_snapshot
                raw.execute(f"{_BEGIN_SNAPSHOT}; {limit}")  # no Django cursor: nothing to see
            return fn()
    except DatabaseError as exc:
        over = over_statement_limit(exc)
        if over is not None:
            raise QueryTimeout(function, over) from exc
        raise


def over_statement_limit(exc: BaseException) -> float | None:
    """``QUERY_STATEMENT_TIMEOUT`` when ``exc`` is PostgreSQL cancelling a statement that ran
    over it (SQLSTATE 57014, not an operator's cancel request); otherwise None."""
    limit = reactive_settings().QUERY_STATEMENT_TIMEOUT
    if limit is None or sqlstate(exc) != QUERY_CANCELED or "user request" in str(exc):
        return None
    return limit


@contextlib.contextmanager
def query_clock(function: str) -> Iterator[None]:
    """Time the rest of this context as query ``function``'s run: once it has run for
    ``QUERY_STATEMENT_TIMEOUT``, its next SQL statement raises QueryTimeout instead of running
    (``stop_overdue_queries``). This catches what the statement limit cannot see: many
    statements, each under it. Time in Python after the last statement is not stopped. A
    query called from another query runs on its caller's clock."""
    limit = reactive_settings().QUERY_STATEMENT_TIMEOUT
    if limit is None or _clock.get() is not None:
        yield
        return
    token = _clock.set((time.monotonic() + limit, function, limit))
    try:
        yield
    finally:
        _clock.reset(token)


def stop_overdue_queries(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
) -> Any:
    """A Django ``execute_wrapper`` on every connection (``reactive.apps``): a query
    past its time (``query_clock``) gets no further statement. Savepoint statements still run:
    they clean up after it."""
    clock = _clock.get()
    if clock is not None and time.monotonic() > clock[0] and not _transaction_control(sql):
        raise QueryTimeout(clock[1], clock[2], whole_query=True)
    return execute(sql, params, many, context)


# (deadline on time.monotonic(), function, limit) of the query this context runs.
_clock: contextvars.ContextVar[tuple[float, str, float] | None] = contextvars.ContextVar(
    "reactive_query_clock", default=None
)
_TRANSACTION_CONTROL = frozenset({"SAVEPOINT", "RELEASE", "ROLLBACK"})


def _transaction_control(sql: Any) -> bool:
    head = sql[:24].split(None, 1) if isinstance(sql, str) else []
    return bool(head) and head[0].upper() in _TRANSACTION_CONTROL


def _statement_limit() -> str:
    """``SET LOCAL`` of ``QUERY_STATEMENT_TIMEOUT`` for the rest of a query transaction (and
    ``""`` without a limit). Before the shared savepoint: rolling back to it keeps the limit."""
    limit = reactive_settings().QUERY_STATEMENT_TIMEOUT
    if limit is None:
        return ""
    return f"SET LOCAL statement_timeout = {max(1, round(limit * 1000))}; "


@contextlib.contextmanager
def _read_only_transaction(function: str) -> Iterator[None]:
    """The REPEATABLE READ READ ONLY transaction of ``function``'s queries; a write inside it
    raises ReadOnlyError naming the function."""
    require_no_outer_transaction(function)
    try:
        with (
            isolation(IsolationLevel.REPEATABLE_READ, read_only=True),
            transaction.atomic(using=DEFAULT_DB_ALIAS),
            scope(Scope.QUERY),
        ):
            yield
    except DatabaseError as exc:
        if sqlstate(exc) == READ_ONLY_SQL_TRANSACTION:
            raise ReadOnlyError(
                f"Query '{function}' tried to write to the database; queries are read-only. "
                "Move the write into a mutation."
            ) from exc
        raise


# The savepoint a snapshot's queries share (``run_snapshot``, ``query_savepoint``).
QUERY_SAVEPOINT = "reactive_query"
_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# The raw connection whose open transaction has QUERY_SAVEPOINT (set by run_snapshot).
_shared_savepoint: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "reactive_shared_savepoint", default=None
)


def run_snapshot(fn: Callable[[Any], T], first: str, params: list[Any] | None = None, *,
                 function: str) -> T:
    """``run_read_only``, with the transaction's ``BEGIN``, the statements ``first``, the
    statement limit for the queries (``QUERY_STATEMENT_TIMEOUT``; ``first`` runs before it)
    and a savepoint they share (``query_savepoint``) sent in one round trip.

    ``fn(cursor)`` finds the cursor on the first result of ``first`` (``nextset()`` moves to
    the next). psycopg would send its own ``BEGIN``, alone, before the first statement; in
    autocommit it sends none, and ours opens the transaction. Django's ``atomic`` still ends
    it (psycopg's commit and rollback act on whatever transaction is open).
    """
    with _read_only_transaction(function):
        connection = connections[DEFAULT_DB_ALIAS]
        raw = connection.connection
        raw.autocommit = True  # idle still: atomic() leaves the BEGIN to psycopg
        with connection.cursor() as cursor:
            cursor.execute(f"{_BEGIN_SNAPSHOT}; {first}; {_statement_limit()}"
                           f"SAVEPOINT {QUERY_SAVEPOINT}", params)
            cursor.nextset()
            token = _shared_savepoint.set(raw)
            try:
                return fn(cursor)
            finally:
                _shared_savepoint.reset(token)


@contextlib.contextmanager
def query_savepoint() -> Iterator[None]:
    """One query of a snapshot: whatever it does to the transaction, the next query starts
    from a usable one.

    In a ``run_snapshot`` transaction the queries share its savepoint: a query that fails or
    leaves the transaction aborted is rolled back to it (one round trip, only then); one that
    succeeds costs none (a query writes nothing, so there is nothing to release). Elsewhere,
    a savepoint of its own (``SAVEPOINT`` and ``RELEASE``: two round trips).
    """
    connection = connections[DEFAULT_DB_ALIAS]
    raw = connection.connection
    if raw is None or _shared_savepoint.get() is not raw:
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            yield
        return
    try:
        yield
    except BaseException:
        _back_to_savepoint(connection)
        raise
    aborted = raw.info.transaction_status == TransactionStatus.INERROR
    if aborted or connection.needs_rollback:
        _back_to_savepoint(connection)
    if aborted:  # as a savepoint's RELEASE would have failed in an aborted transaction
        raise DatabaseError("the query went on after a database error aborted its "
                            "transaction; nothing it read after that counts")


def export_snapshot() -> str:
    """``pg_export_snapshot()`` of the open transaction (for other connections to share it
    with ``SET TRANSACTION SNAPSHOT``). Postgres exports none from inside a savepoint: a
    ``run_snapshot`` transaction's shared one is released around the export (one round trip
    still)."""
    connection = connections[DEFAULT_DB_ALIAS]
    shared = connection.connection is not None and _shared_savepoint.get() is connection.connection
    with connection.cursor() as cursor:
        if not shared:
            cursor.execute("SELECT pg_export_snapshot()")
            return str(cursor.fetchone()[0])
        cursor.execute(f"RELEASE SAVEPOINT {QUERY_SAVEPOINT}; SELECT pg_export_snapshot(); "
                       f"SAVEPOINT {QUERY_SAVEPOINT}")
        cursor.nextset()
        return str(cursor.fetchone()[0])


def _back_to_savepoint(connection: Any) -> None:
    raw = connection.connection
    if raw is None or raw.closed:
        return  # nothing to undo on a lost connection: the caller's error says so
    if raw.info.transaction_status == TransactionStatus.INTRANS and not connection.needs_rollback:
        return  # nothing went wrong in the database: nothing to undo
    # Django refuses statements while it marks the transaction for rollback; this one is it.
    transaction.set_rollback(False, using=DEFAULT_DB_ALIAS)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {QUERY_SAVEPOINT}")
    except BaseException:
        transaction.set_rollback(True, using=DEFAULT_DB_ALIAS)  # the round cannot go on
        raise
