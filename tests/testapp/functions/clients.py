"""Functions the real-client tests call: `testapp/clients:<name>`.

Notes are paginated by body (then id), so a test can insert a row inside any page's range.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from reactive import FunctionError, MutationCtx, QueryCtx, mutation, query
from reactive.functions.pagination import PaginationOptions
from reactive.values import Int64
from tests.testapp.models import Note


@query
def paginate_notes(ctx: QueryCtx, pagination_opts: PaginationOptions, prefix: str = "") -> Any:
    """One reactive page of the notes whose body starts with ``prefix``, ordered by body."""
    notes = Note.objects.filter(body__startswith=prefix).order_by("body")
    return ctx.paginate(notes, pagination_opts)


@query
def list_bodies(ctx: QueryCtx, prefix: str = "") -> list[str]:
    return list(Note.objects.filter(body__startswith=prefix).order_by("id")
                .values_list("body", flat=True))


@query
def slow_count(ctx: QueryCtx, prefix: str, seconds: float) -> int:
    """Counts notes, slowly once there are any: while it re-runs, the Reactor's round (and so
    every response and Transition of that server) is held up for ``seconds``."""
    count = Note.objects.filter(body__startswith=prefix).count()
    if count:
        time.sleep(seconds)
    return count


@query
def sql_sleep_count(ctx: QueryCtx, prefix: str, seconds: float) -> int:
    """Counts notes; once there are any, first waits ``seconds`` inside one SQL statement
    (``pg_sleep``), which ``QUERY_STATEMENT_TIMEOUT`` cancels when it is shorter."""
    count = Note.objects.filter(body__startswith=prefix).count()
    if count:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return count


@query
def sql_sleep_many(ctx: QueryCtx, prefix: str, statements: int, seconds: float) -> int:
    """Counts notes; once there are any, then runs ``statements`` SQL statements of
    ``seconds`` each (``pg_sleep``): each under ``QUERY_STATEMENT_TIMEOUT``, all of them over
    it, as a query that reads one row per statement (N+1) can be."""
    count = Note.objects.filter(body__startswith=prefix).count()
    if count:
        with connection.cursor() as cursor:
            for _ in range(statements):
                cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return count


@query
def calls_sql_sleep_many(ctx: QueryCtx, prefix: str, statements: int, seconds: float) -> int:
    """``sql_sleep_many`` called from a query, after the caller's own statements."""
    with connection.cursor() as cursor:
        for _ in range(statements):
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return int(ctx.run_query(sql_sleep_many, prefix=prefix, statements=statements,
                             seconds=seconds))


@mutation
def reads_sql_sleep_many(ctx: MutationCtx, prefix: str, statements: int, seconds: float) -> int:
    """``sql_sleep_many`` called from a mutation (part of it: not limited)."""
    return int(ctx.run_query(sql_sleep_many, prefix=prefix, statements=statements,
                             seconds=seconds))


@mutation
def sql_sleep_add_note(ctx: MutationCtx, body: str, seconds: float) -> str:
    """Insert a note after one SQL statement of ``seconds`` (mutations have no statement
    limit)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return str(Note.objects.create(body=body).pk)


@mutation
def slow_add_note(ctx: MutationCtx, body: str, seconds: float = 1.0) -> str:
    """Insert a note, then sleep inside the still-open transaction before committing."""
    note = Note.objects.create(body=body)
    time.sleep(seconds)
    return str(note.pk)


@mutation
def remove_note(ctx: MutationCtx, body: str) -> int:
    deleted, _ = Note.objects.filter(body=body).delete()
    if not deleted:
        raise FunctionError({"code": "NOT_FOUND", "body": body})
    return deleted


@query
def int64_double(ctx: QueryCtx, n: int) -> Int64:
    """Twice ``n``, always as an Int64 (a ``bigint`` / ``ConvexInt64`` on the client)."""
    return Int64(2 * n)


def blob(size: int) -> str:
    """``size`` characters of hex, the same for the same size (the tests recompute it)."""
    import hashlib

    seed = hashlib.sha256(str(size).encode()).hexdigest()
    return (seed * (size // len(seed) + 1))[:size]


@query
def sized(ctx: QueryCtx, size: int, prefix: str = "") -> dict[str, Any]:
    """The notes whose body starts with ``prefix``, and a ``size``-character string: a live
    result of any size that a note write changes."""
    if not 0 <= size <= 64 * 1024 * 1024:
        raise FunctionError("size must be between 0 and 64 MiB", {"code": "SIZE"})
    bodies = list(Note.objects.filter(body__startswith=prefix).order_by("id")
                  .values_list("body", flat=True))
    return {"bodies": bodies, "blob": blob(size)}


@query
def napping_count(ctx: QueryCtx, prefix: str, index: int, seconds: float) -> int:
    """Sleeps ``seconds`` (out of the database), then counts notes: a round re-running many of
    these is long, so a test can break its connection in the middle. ``index`` only makes
    each subscription a distinct query."""
    time.sleep(seconds)
    return Note.objects.filter(body__startswith=prefix).count()


@query
def bad_cast(ctx: QueryCtx, prefix: str) -> int:
    """A user's database error (invalid text for an integer), after reading the notes."""
    Note.objects.filter(body__startswith=prefix).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::int", ["not a number"])
        return int(cursor.fetchone()[0])
