"""Every error django-reactivity raises, in one tree.

    ReactiveError
    ├── ValueEncodingError        a value cannot be sent as a Convex value
    ├── ValueDecodingError        incoming JSON is not a valid Convex value
    ├── DefinitionError           a function or cron is declared wrongly (at import/start-up)
    ├── RequestError              a caller asked for something it may not have
    │   ├── FunctionNotFound      no public function of that name (or not visible to the caller)
    │   ├── ArgumentError         arguments do not match the function's signature
    │   ├── BadRequest            the request itself is malformed (body, JSON, shape, size)
    │   ├── AuthenticationError   credentials were sent but are not valid
    │   └── CursorExpired         an export cursor is older than the change log's retention
    ├── FunctionError             raised on purpose by user code; its data reaches the client
    │   ├── StorageError          ctx.storage was given an unknown or malformed storage id
    │   └── DocumentError         ctx.db was given a bad table, id or document
    ├── ProtocolError             a websocket client broke the sync protocol (FatalError, close)
    ├── Overloaded                a websocket client sends faster than it is served (close 1013)
    ├── AuthRejected              a session's credentials were refused or expired (AuthError, close)
    └── ExecutionError            the function could not complete
        ├── ConflictError         a mutation kept conflicting until the last attempt
        ├── ReadOnlyError         a query (or an action's direct ORM use) tried to write
        ├── ReturnValueError      the result does not match the declared `returns=` type
        ├── UntrackedReadError    a live query read a relation no capture trigger watches
        ├── SchedulingError       a job cannot be scheduled or canceled as asked
        │   ├── ScheduledArgumentError   arguments do not match the target's signature
        │   └── SchedulingLimitError     too many jobs in one transaction, or arguments too large
        ├── ReactionError         a reaction cannot be run, retried or skipped as asked
        └── DataMigrationError    a data migration cannot be run or changed as asked

Each class has a stable ``code`` (sent to clients and used in logs) and structured
attributes; messages are full sentences that say what was expected and what to change.
"""

from __future__ import annotations

import json
from typing import Any


class ReactiveError(Exception):
    """Root of every error raised by django-reactivity."""

    code = "ReactiveError"


class ValueEncodingError(ReactiveError, TypeError):
    """Raised when a value cannot be encoded as a Convex value (bad type, key or size)."""

    code = "ValueEncodingError"


class ValueDecodingError(ReactiveError, ValueError):
    """Raised when incoming JSON is not a valid Convex-encoded value."""

    code = "ValueDecodingError"


class DefinitionError(ReactiveError):
    """Raised at import or start-up when a function, cron or setting is declared wrongly."""

    code = "DefinitionError"


class RequestError(ReactiveError):
    """Raised when a caller's request cannot be served as asked; the caller is at fault."""

    code = "BadRequest"
    http_status = 400


class FunctionNotFound(RequestError):
    """Raised when no function of that name exists, or it is internal and the caller is not.

    Both cases give the same message so that clients cannot probe for internal functions.
    """

    code = "FunctionNotFound"
    http_status = 404

    def __init__(self, name: str, suggestion: str = "") -> None:
        text = f"Could not find public function for '{name}'."
        super().__init__(f"{text} {suggestion}" if suggestion else text)
        self.function = name


class ArgumentError(RequestError):
    """Raised when arguments do not validate against the function's type hints.

    ``errors`` holds one ``(field path, message)`` pair per problem, e.g. ``("limit", "Input
    should be a valid integer")``; the function did not run.
    """

    code = "ArgumentValidationError"

    def __init__(self, function: str, errors: list[tuple[str, str]]) -> None:
        details = "; ".join(f"{path or '<args>'}: {msg}" for path, msg in errors)
        super().__init__(f"Invalid arguments for '{function}': {details}.")
        self.function = function
        self.errors = errors


class BadRequest(RequestError):
    """Raised when a request is malformed: bad JSON, wrong shape, wrong method or too large."""

    code = "BadRequest"

    def __init__(self, message: str, *, code: str = "BadRequest", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class AuthenticationError(RequestError):
    """Raised when credentials were sent (header, token, admin key) but are not valid."""

    code = "Unauthenticated"
    http_status = 401


class CursorExpired(RequestError):
    """Raised when a streaming-export cursor or snapshot is unknown, or older than what the
    change log still holds (``CHANGE_LOG_RETENTION``): the consumer must take a new snapshot.

    ``cursor`` is the value the consumer sent.
    """

    code = "CursorExpired"
    http_status = 410

    def __init__(self, message: str, cursor: str) -> None:
        super().__init__(message)
        self.cursor = cursor


class FunctionError(ReactiveError):
    """Raise this from a function to fail on purpose; ``data`` reaches the client.

    The official clients turn it into a ``ConvexError`` whose ``.data`` is ``data``
    (any Convex value). A mutation that raises it rolls back.
    """

    code = "FunctionError"

    def __init__(self, data: Any = None, message: str | None = None) -> None:
        self.data = data
        super().__init__(message if message is not None else _describe(data))


class StorageError(FunctionError):
    """Raised by ``ctx.storage`` for a storage id that is malformed or names no stored file.

    A ``FunctionError``, so the client gets a ``ConvexError`` whose ``data`` is
    ``{"code": code, "storageId": storage_id}`` (``StorageIdInvalid`` or ``StorageFileNotFound``).
    """

    code = "StorageError"

    def __init__(self, storage_id: str, *, code: str, message: str) -> None:
        super().__init__({"code": code, "storageId": storage_id}, message)
        self.code = code
        self.storage_id = storage_id


class DocumentError(FunctionError):
    """Raised by ``ctx.db`` for a bad table name, id or document, or a write that breaks an
    enforced shape. A ``FunctionError``: the client gets a ``ConvexError`` whose ``data`` is
    ``{"code": code, "table": table, "field": field}`` (``field`` may be None). Codes:
    ``InvalidTableName``, ``InvalidDocumentId``, ``DocumentNotFound``, ``InvalidDocument``,
    ``DocumentTooLarge``, ``DocumentTooDeep``, ``ShapeViolation``, ``MoveInProgress`` (a read
    of a table routed to a model while some of its documents are not moved yet).
    """

    code = "DocumentError"

    def __init__(self, message: str, *, code: str, table: str | None = None,
                 field: str | None = None) -> None:
        super().__init__({"code": code, "table": table, "field": field}, message)
        self.code = code
        self.table = table
        self.field = field


class ProtocolError(ReactiveError):
    """Raised when a sync-protocol client message is malformed or breaks the protocol's rules
    (message order, versions, query ids): a client bug, answered with FatalError and a close."""

    code = "ProtocolError"


class Overloaded(ReactiveError):
    """Raised when a websocket client sends faster than the server serves it (too many mutations
    in flight): the connection closes with 1013, so the client backs off and reconnects (a
    FatalError would stop an npm client for good)."""

    code = "Overloaded"


class AuthRejected(ReactiveError):
    """Raised when a session's credentials were refused or its token expired: the session has
    sent AuthError, and the connection closes so the client fetches a fresh token."""

    code = "AuthRejected"


class ExecutionError(ReactiveError):
    """Raised when a function could not complete for a reason other than user code."""

    code = "ExecutionError"


class ConflictError(ExecutionError):
    """Raised when a mutation conflicted on every attempt (serialization failure or deadlock)."""

    code = "OptimisticConcurrencyControlFailure"

    def __init__(self, function: str, attempts: int, sqlstate: str) -> None:
        super().__init__(
            f"Mutation '{function}' conflicted with concurrent writes on all {attempts} attempts "
            f"(SQLSTATE {sqlstate}); retry later or raise REACTIVE['MUTATION_MAX_ATTEMPTS']."
        )
        self.function = function
        self.attempts = attempts
        self.sqlstate = sqlstate


class ReadOnlyError(ExecutionError):
    """Raised when a query writes to the database, or an action uses the ORM to write."""

    code = "ReadOnlyError"


class UntrackedReadError(ExecutionError):
    """Raised when a query read tables whose writes are never captured, so its live result
    could go stale without anyone knowing (``REACTIVE['UNTRACKED_READS']``)."""

    code = "UntrackedRead"

    def __init__(self, function: str, tables: list[str]) -> None:
        super().__init__(
            f"Query '{function}' reads {', '.join(tables)}, which no change-capture trigger "
            "watches: its live result would go stale. Track the table (TRACKED_APPS, "
            "UNTRACKED_MODELS, reactive_triggers install), stop reading it, or accept stale "
            "results with @query(untracked_reads='warn') or REACTIVE['UNTRACKED_READS']='warn'."
        )
        self.function = function
        self.tables = tables


class QueryTimeout(ExecutionError):
    """A query ran longer than ``REACTIVE['QUERY_STATEMENT_TIMEOUT']``: PostgreSQL cancelled
    one SQL statement over it, or (``whole_query``) the query had run that long in all and
    was stopped at its next statement. That query fails with this error; other queries, live
    ones included, are not held up by it."""

    code = "QueryTimeout"

    def __init__(self, function: str, limit: float, *, whole_query: bool = False) -> None:
        if whole_query:
            message = (
                f"Query '{function}' ran for longer than {limit:g} s, the limit for queries "
                "(REACTIVE['QUERY_STATEMENT_TIMEOUT']), and was stopped at its next SQL "
                "statement. Make the query cheaper (fewer statements: select_related or "
                "prefetch_related instead of one query per row) or raise the limit."
            )
        else:
            message = (
                f"Query '{function}' ran a SQL statement for longer than {limit:g} s, the limit "
                "for queries (REACTIVE['QUERY_STATEMENT_TIMEOUT']), and the database cancelled "
                "it. Make the query cheaper (an index, fewer rows, a paginated read) or raise "
                "the limit."
            )
        super().__init__(message)
        self.function = function
        self.limit = limit
        self.whole_query = whole_query


class ResultTooLarge(ExecutionError):
    """A live query's encoded result is over ``REACTIVE['WEBSOCKET_MAX_RESULT_BYTES']``: that
    query fails with this error; the session's other queries keep updating."""

    code = "ResultTooLarge"

    def __init__(self, function: str, size: int, limit: int) -> None:
        super().__init__(
            f"Query '{function}' returned {size} bytes of JSON, over the limit of {limit} "
            "bytes for a live query result (REACTIVE['WEBSOCKET_MAX_RESULT_BYTES']). Return "
            "less (paginate) or raise the limit."
        )
        self.function = function
        self.size = size
        self.limit = limit


class ReturnValueError(ExecutionError):
    """Raised when a function's result does not validate against its ``returns=`` type."""

    code = "ReturnValueValidationError"

    def __init__(self, function: str, errors: list[tuple[str, str]]) -> None:
        details = "; ".join(f"{path or '<result>'}: {msg}" for path, msg in errors)
        super().__init__(f"Function '{function}' returned an invalid value: {details}.")
        self.function = function
        self.errors = errors


class SchedulingError(ExecutionError):
    """Raised when ``ctx.scheduler`` refuses a job: unknown or unschedulable function (only
    mutations and actions can be scheduled), an invalid time, or a call outside a mutation or
    action. Nothing was scheduled. ``function`` names the target when known."""

    code = "SchedulingError"

    def __init__(self, message: str, *, function: str | None = None) -> None:
        super().__init__(message)
        self.function = function


class ScheduledArgumentError(SchedulingError):
    """Raised when a job's arguments do not validate against the target's signature, at
    scheduling time. ``errors`` holds ``(field path, message)`` pairs, as in ArgumentError."""

    code = "ScheduledArgumentValidationError"

    def __init__(self, function: str, errors: list[tuple[str, str]]) -> None:
        details = "; ".join(f"{path or '<args>'}: {msg}" for path, msg in errors)
        super().__init__(
            f"Cannot schedule '{function}': invalid arguments: {details}.", function=function
        )
        self.errors = errors


class SchedulingLimitError(SchedulingError):
    """Raised when scheduling would exceed a limit: ``setting`` names the ``REACTIVE`` key
    (``SCHEDULER_MAX_JOBS_PER_TRANSACTION`` or ``SCHEDULER_MAX_ARGS_BYTES``), ``limit`` its
    value and ``actual`` what was asked for."""

    code = "SchedulingLimitExceeded"

    def __init__(
        self, message: str, *, function: str, setting: str, limit: int, actual: int
    ) -> None:
        super().__init__(message, function=function)
        self.setting = setting
        self.limit = limit
        self.actual = actual


def _describe(data: Any) -> str:
    """The message of a FunctionError without one: the data itself when a string, else the
    data as JSON, as the npm client's ConvexError shows it (never a Python repr)."""
    if isinstance(data, str):
        return data
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # circular data, keys JSON cannot hold
        text = str(data)
    return f"ConvexError: {text}"


class ReactionError(ExecutionError):
    """Raised when a reaction (``@on_change``) is unknown, or cannot be retried or skipped in
    its current state."""

    code = "ReactionError"


class DataMigrationError(ExecutionError):
    """Raised when a data migration (``@migration``) is unknown, its queryset cannot be
    migrated (untracked or unmanaged model), or its state does not allow what was asked."""

    code = "DataMigrationError"
