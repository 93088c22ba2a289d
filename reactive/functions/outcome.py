"""What a call hands back to an edge: ``Outcome``, and ``failure``, the one place an exception
becomes the error a client sees (and is logged as operators need it).

Edges turn an Outcome into their own shapes: HTTP statuses in :mod:`reactive.http.views`,
protocol messages in :mod:`reactive.live`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings

from reactive import values
from reactive.conf import reactive_settings
from reactive.exceptions import (
    ExecutionError,
    FunctionError,
    ReactiveError,
    RequestError,
    ValueDecodingError,
    ValueEncodingError,
)
from reactive.functions.convert import to_value
from reactive.functions.definitions import FunctionDefinition, FunctionRef

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """The result of one call as an edge sends it: a wire-encoded value, or an error.

    ``error_data`` is set only for ``FunctionError`` (it becomes ``ConvexError.data``).
    ``caller_error`` is true when the caller was at fault (a ``RequestError``: unknown
    function, bad arguments, wrong kind), as opposed to a function that ran and failed; ``code``
    then names which, and the HTTP API answers 4xx instead of 200.
    """

    value: Any = None
    error: str | None = None
    error_data: Any = None
    has_error_data: bool = False
    code: str | None = None
    caller_error: bool = False
    log_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(exc: Exception, ref: FunctionRef) -> Outcome:
    """Describe an exception as clients should see it, logging what operators need."""
    name = ref_name(ref)
    if isinstance(exc, RequestError):
        return Outcome(error=str(exc), code=exc.code, caller_error=True)
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
    down = database_unreachable(exc)
    if down is not None:  # its message names the fix; a traceback would only bury it
        logger.error("function failed function=%s request_id=%s: %s", name, request_id, down)
        detail = f"\n{down}"
    else:
        logger.error("function crashed function=%s request_id=%s", name, request_id, exc_info=exc)
        detail = f"\nUncaught {type(exc).__name__}: {exc}"
    message = f"[Request ID: {request_id}] Server Error"
    return Outcome(error=message + detail if _expose_details() else message,
                   code="InternalServerError")


def database_unreachable(exc: BaseException) -> BaseException | None:
    """The error, among ``exc`` and its causes, of a database server that did not answer (the
    ``reactive.embedded.backend`` marks it ``database_unreachable``; Django wraps it)."""
    return _among_causes(exc, lambda e: bool(getattr(e, "database_unreachable", False)))


def database_trouble(exc: BaseException) -> str | None:
    """One log line for ``exc`` when the database is at fault, not the code: its server did
    not answer (the line names the fix) or the connection was lost (the next use of the
    connection reconnects). None for any other error, which deserves its traceback."""
    if (down := database_unreachable(exc)) is not None:
        return str(down)
    if (lost := connection_lost(exc)) is not None:
        text = str(lost).strip()
        first = text.splitlines()[0] if text else type(lost).__name__
        return f"the database connection was lost ({first})"
    return None


def connection_lost(exc: BaseException) -> BaseException | None:
    """The error, among ``exc`` and its causes, of a connection the server closed or
    terminated (SQLSTATE class 08 or 57P, or none: the socket went away), as when PostgreSQL
    restarts; the next use of the connection reconnects. A serialization failure is not one,
    nor a cancelled statement (57014: a statement timeout), whose connection carries on."""
    return _among_causes(exc, lambda e: isinstance(e, psycopg.OperationalError)
                         and (not e.sqlstate or e.sqlstate.startswith(("08", "57P"))))


def _among_causes(exc: BaseException,
                  matches: Callable[[BaseException], bool]) -> BaseException | None:
    """The first of ``exc`` and its causes (Django's wrappers included, four deep) that
    ``matches``."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if matches(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def ref_name(ref: FunctionRef) -> str:
    """A function's name for logs, however the caller named it (capped for untrusted input)."""
    return ref.name if isinstance(ref, FunctionDefinition) else str(ref)[:200]


def _expose_details() -> bool:
    configured = reactive_settings().EXPOSE_ERROR_DETAILS
    return bool(settings.DEBUG) if configured is None else configured
