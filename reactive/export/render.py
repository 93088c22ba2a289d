"""A table's rows as Convex document JSON lines, rendered by Postgres and streamed with ``COPY``
(the fast path), or decoded and re-encoded in Python (the reference, and the fallback).

Both give the same documents (tests/export/test_render.py compares them for every column type
the test models have): ``_id`` (the key as text), ``_creationTime`` (ms, when the model
records creation), then the other columns in ``to_jsonb`` key order (shortest name first, then
bytewise), each value as ``to_jsonb`` renders it. Bytes may differ where JSON does not care:
non-ASCII characters stay UTF-8 instead of ``\\u`` escapes, ``numeric`` keeps its scale
(``12.50``), nested JSON keeps Postgres's spacing. Parsed, a line of either path is the same
value, with the same key order and the same integer/fractional number kinds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db import connections

from reactive.exceptions import BadRequest
from reactive.export.tables import Table
from reactive.sql import quote_ident

# Column types whose json rendering (row_to_json) is the to_jsonb one, byte for byte: the same
# escape_json for text, the same JsonEncodeDateTime for timestamptz. Any other type (floats,
# whose to_jsonb goes through numeric; json, whose keys to_jsonb sorts; arrays; extension
# types) is wrapped in to_jsonb(), which is what the reference decodes: never narrower.
NATIVE = frozenset({"smallint", "integer", "bigint", "text", "character varying", "boolean",
                    "uuid", "jsonb", "timestamp with time zone"})
# Key types whose ::text is the str() of their to_jsonb value; any other key: Python path.
TEXT_KEYS = frozenset({"smallint", "integer", "bigint", "text", "character varying", "uuid"})
# Rows per write: one join, one unescape and one compressor call per batch, not per row.
BATCH = 2000


def document_lines(table: Table, using: str = "default") -> Iterator[tuple[int, bytes]]:
    """Yield batches of UTF-8 JSON lines (each ending in a newline) as (lines, bytes), in no
    particular order, at the snapshot of the caller's open transaction. Uses ``COPY`` when
    the key and creation columns have types it renders exactly, else the Python reference."""
    raw = connections[using].connection
    with raw.cursor() as cursor:
        statement = copy_statement(cursor, table)
    if statement is None:
        yield from python_lines(table, using)
        return
    yield from _copy_lines(table, statement, using)


def copy_statement(cursor: Any, table: Table) -> str | None:
    """The ``COPY ... TO STDOUT`` rendering ``table``'s documents, or None when its key or
    creation column has a type only the Python path renders exactly."""
    columns = _columns(cursor, table)
    pk = columns.get(table.pk)
    created = table.created_column
    if pk not in TEXT_KEYS:
        return None
    if created is not None and columns.get(created) != "timestamp with time zone":
        return None
    # extra_float_digits >= 1: floats print their shortest exact digits, as repr() does.
    cursor.execute("SET LOCAL extra_float_digits = 1")
    line = f"'{{\"_id\":' || to_json(t.{quote_ident(table.pk)}::text)::text"
    laterals = ""
    if created is not None:
        column = f"t.{quote_ident(created)}"
        line += " || " + _creation_time(column)
        laterals += f", LATERAL (SELECT {_epoch_ms(column)}) AS m(ms)"
    rest = sorted((name for name in columns if name != table.pk),
                  key=lambda name: (len(name.encode()), name.encode()))
    if rest:
        values = ", ".join(f"t.{quote_ident(n)}" if columns[n] in NATIVE
                           else f"to_jsonb(t.{quote_ident(n)})" for n in rest)
        names = ", ".join(quote_ident(n) for n in rest)
        line += " || ',' || substr(row_to_json(r)::text, 2)"
        laterals += f", LATERAL (SELECT {values}) AS r({names})"
    else:
        line += " || '}'"
    # No ORDER BY: a sequential scan is faster than walking the key index, and a snapshot
    # ZIP promises no order (the Python path's key order is not part of the format).
    return f"COPY (SELECT {line} FROM {quote_ident(table.name)} t{laterals}) TO STDOUT"


def _epoch_ms(column: str) -> str:
    """Python's ``timestamp() * 1000`` as float8: microseconds since 1970 divided by 10**6,
    rounded once, times 1000. ``date_part`` divides the float8 of the microseconds, exact while
    they fit 53 bits (1685-2254); outside that, the exact ``extract`` numeric rounded once."""
    return (f"CASE WHEN {column} BETWEEN '1686-01-01Z' AND '2254-01-01Z' "
            f"THEN date_part('epoch', {column}) ELSE extract(epoch FROM {column})::float8 END "
            "* 1000")


def _creation_time(column: str) -> str:
    """``,"_creationTime":<ms>`` as Python's ``timestamp() * 1000`` prints it: the same float
    (exact epoch seconds rounded once to float8, then times 1000), with repr()'s ``.0`` on whole
    numbers; '' for a null column; NULL (refused by the reader) for +-infinity."""
    return (f"(CASE WHEN {column} IS NULL THEN '' WHEN isfinite({column}) THEN "
            "',\"_creationTime\":' || m.ms::text || CASE WHEN m.ms = trunc(m.ms) "
            "AND abs(m.ms) < 1e15::float8 THEN '.0' ELSE '' END END)")


def _columns(cursor: Any, table: Table) -> dict[str, str]:
    """The table's columns as the database has them (to_jsonb(t) shows every one): name ->
    type."""
    cursor.execute(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [quote_ident(table.name)],
    )
    return {name: kind for name, kind in cursor.fetchall()}


def _copy_lines(table: Table, statement: str, using: str) -> Iterator[tuple[int, bytes]]:
    raw = connections[using].connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        batch: list[bytes] = []
        for row in copy:
            batch.append(bytes(row))
            if len(batch) >= BATCH:
                yield len(batch), _unescape(table, batch)
                batch = []
        if batch:
            yield len(batch), _unescape(table, batch)


def _unescape(table: Table, rows: list[bytes]) -> bytes:
    """COPY's text format doubles each backslash and escapes control characters; JSON text
    has no raw control characters, so undoubling backslashes restores it exactly. A NULL line
    (``\\N``) is a creation time Python could not have printed either (+-infinity)."""
    chunk = b"".join(rows)
    if b"\\N\n" in chunk and (chunk.startswith(b"\\N\n") or b"\n\\N\n" in chunk):
        raise BadRequest(f"Table {table.name!r} has a row whose {table.created_column!r} is "
                         "infinite; a document's _creationTime must be a finite time.",
                         code="BadExport")
    return chunk.replace(b"\\\\", b"\\")


def python_lines(table: Table, using: str = "default") -> Iterator[tuple[int, bytes]]:
    """The reference: each row's ``to_jsonb`` decoded, made a document by
    :meth:`Table.document` and encoded again, through a server-side cursor."""
    raw = connections[using].connection
    with raw.cursor(name=f"reactive_export_{table.name}") as server_side:
        server_side.itersize = BATCH
        server_side.execute(
            f"SELECT to_jsonb(t)::text FROM {quote_ident(table.name)} t "
            f"ORDER BY {quote_ident(table.pk)}"
        )
        batch: list[str] = []
        for (text,) in server_side:
            doc = table.document(json.loads(text))
            batch.append(json.dumps(doc, separators=(",", ":")) + "\n")
            if len(batch) >= BATCH:
                yield len(batch), "".join(batch).encode()
                batch = []
        if batch:
            yield len(batch), "".join(batch).encode()

