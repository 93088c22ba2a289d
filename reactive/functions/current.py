"""The client-facing call this context is running (function name and decoded arguments, for
error reporters such as the Sentry hook; never sent anywhere by itself) and the rows its SQL
statements read and wrote, counted by an ``execute_wrapper`` on every connection."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RunningCall:
    """``rows_read``/``rows_written``: rows returned by reading statements and affected by
    writing ones, over every attempt of the call (a retried mutation counts each attempt)."""

    function: str
    args: Mapping[str, Any]
    rows_read: int = 0
    rows_written: int = 0


_running: contextvars.ContextVar[RunningCall | None] = contextvars.ContextVar(
    "reactive_running_call", default=None
)


@contextmanager
def running(function: str, args: Mapping[str, Any]) -> Iterator[RunningCall]:
    """Mark the rest of this context as running ``function`` with ``args``."""
    call = RunningCall(function, args)
    token = _running.set(call)
    try:
        yield call
    finally:
        _running.reset(token)


def current() -> RunningCall | None:
    """The call this context runs, if any (threads and tasks that copy the context see it)."""
    return _running.get()


_READS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


def count_rows(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """A Django ``execute_wrapper`` on every connection (``reactive.apps``): add the statement's
    ``rowcount`` to the running call's reads or writes, by the statement's first word."""
    result = execute(sql, params, many, context)
    call = _running.get()
    if call is not None and isinstance(sql, str):  # a psycopg Composed is not classified
        rows = context["cursor"].rowcount
        if rows > 0:
            # The first word; only the start is looked at (the statement may be long).
            head = sql[:64].split(None, 1)
            word = head[0].upper() if head else ""
            if word in _READS:
                call.rows_read += rows
            elif word in _WRITES:
                call.rows_written += rows
    return result
