"""Streaming export over the change log: ``list_snapshot`` (every page of a listing shows the
tables as they were at one snapshot) and ``document_deltas`` (every change after a cursor).

Why it is exact (docs/guides/export.md has the consumer's view):

- A position's ``base`` is a ``pg_snapshot``. The changes after it are the log rows whose
  ``txid`` it does not see; ``pg_visible_in_snapshot`` is a pure function of the stored
  snapshot, so a later request can still ask "was this row after ``base`` and up to ``upto``"
  and deliver each committed change once, whatever order writers started or committed in.
- Two changes to one row are ordered by log ``id``: the second writer must wait for the
  first to commit (row lock, or the unique index for a re-used key) before its statement ends
  and its statement-level trigger takes ``id`` values, while the first took its ids before
  committing. So per document, ``id`` order is commit order.
- Hence a later page of a listing can show a table as it was at its snapshot: rows nobody
  touched since, plus, for touched keys, the old image of the first change after the
  snapshot (a key whose first change has no old image did not exist then). A listing stops at
  each table's largest key at its snapshot (kept with the position), so rows inserted later
  are left to the deltas instead of being chased.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest, CursorExpired
from reactive.export import positions
from reactive.export.tables import Table, exported_tables, table_named
from reactive.sql import quote_ident, quote_literal

AFTER_RANGE = (
    "txid >= pg_snapshot_xmin(%(base)s::pg_snapshot) "
    "AND NOT pg_visible_in_snapshot(txid, %(base)s::pg_snapshot)"
)


@dataclass(frozen=True)
class Page:
    values: list[dict[str, Any]]
    cursor: str | int
    has_more: bool
    snapshot: int | None = None


@contextmanager
def snapshot_transaction(using: str = "default") -> Iterator[Any]:
    """A REPEATABLE READ transaction (one snapshot for every statement) and its cursor."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield cursor


def current_snapshot(cursor: Any) -> str:
    cursor.execute("SELECT pg_current_snapshot()::text")
    return str(cursor.fetchone()[0])


# -- list_snapshot ----------------------------------------------------------------------------


def list_snapshot(
    table_name: str | None, snapshot: int | None, cursor_token: str | None,
    limit: int | None = None,
) -> Page:
    """One page of a consistent listing of one table (or all, in name order).

    The first call (no ``snapshot``) fixes the snapshot; pass the returned ``snapshot`` and
    ``cursor`` back for the next page. ``snapshot`` is also the cursor to follow
    ``document_deltas`` from once the listing is done.
    """
    limit = limit or reactive_settings().EXPORT_PAGE_SIZE
    tables = exported_tables()
    if table_name is not None:
        table_named(table_name)  # raises, naming the exported tables
    names = [table_name] if table_name is not None else list(tables)
    start_table, after = _decode_token(cursor_token, names)
    if cursor_token is not None and start_table is None:
        names = []  # the cursor of a finished listing: nothing more
    with snapshot_transaction() as cursor:
        if snapshot is None:
            # The listing's bounds, read at its own snapshot: rows inserted later never extend
            # it (else a listing under steady inserts would chase them for ever).
            limits = {name: _largest_key(cursor, tables[name]) for name in names}
            position = positions.save(cursor, current_snapshot(cursor), limits=limits)
        else:
            position = positions.load(cursor, snapshot)
            if position.limits is None or not set(names) <= set(position.limits):
                raise BadRequest("'snapshot' was not returned by a listing of these tables.",
                                 code="BadCursor")
        values: list[dict[str, Any]] = []
        for name in names[names.index(start_table):] if start_table else names:
            table = tables[name]
            docs, last, more = _table_page(cursor, table, position, after, limit - len(values))
            values.extend(docs)
            if more:
                token = json.dumps([name, None if last is None else str(last)])
                return Page(values, token, True, position.ts)
            after = None
    return Page(values, json.dumps([None, None]), False, position.ts)


def _table_page(
    cursor: Any, table: Table, position: positions.Position, after: str | None, limit: int,
) -> tuple[list[dict[str, Any]], Any, bool]:
    """Up to ``limit`` documents of ``table`` with keys above ``after``, as at the position's
    snapshot: (documents, last key covered, whether more may follow)."""
    if limit <= 0:
        return [], after, True
    assert position.limits is not None
    largest = position.limits.get(table.name)
    if largest is None:
        return [], None, False  # empty at the snapshot
    _refuse_truncate(cursor, table, position)
    params = {"base": position.base, "tbl": table.name, "after": after, "n": limit,
              "largest": largest}
    key = f"(coalesce(new_row, old_row) ->> {quote_literal(table.pk)})::{table.pk_type}"
    cursor.execute(
        f"WITH first AS (SELECT DISTINCT ON (k) k, old_row FROM (SELECT {key} AS k, id, "
        f"old_row FROM reactive_change WHERE tbl = %(tbl)s AND {AFTER_RANGE}) c "
        "ORDER BY k, id) "
        f"SELECT t.{quote_ident(table.pk)}, to_jsonb(t)::text, "
        f"EXISTS (SELECT 1 FROM first f WHERE f.k = t.{quote_ident(table.pk)}) "
        f"FROM {quote_ident(table.name)} t "
        f"WHERE (%(after)s::text IS NULL OR t.{quote_ident(table.pk)} > "
        f"%(after)s::{table.pk_type}) "
        f"AND t.{quote_ident(table.pk)} <= %(largest)s::{table.pk_type} "
        "ORDER BY 1 LIMIT %(n)s",
        params,
    )
    current = cursor.fetchall()
    cursor.execute(
        f"SELECT k, old_row::text FROM (SELECT DISTINCT ON (k) k, old_row FROM (SELECT {key} "
        f"AS k, id, old_row FROM reactive_change WHERE tbl = %(tbl)s AND {AFTER_RANGE}) c "
        "ORDER BY k, id) f WHERE (%(after)s::text IS NULL OR k > "
        f"%(after)s::{table.pk_type}) AND k <= %(largest)s::{table.pk_type} "
        "AND old_row IS NOT NULL ORDER BY k LIMIT %(n)s",
        params,
    )
    restored = cursor.fetchall()
    # Merge two sorted streams; only keys up to the end of a full stream are known complete.
    bounds = [rows[-1][0] for rows in (current, restored) if len(rows) == limit]
    bound = min(bounds) if bounds else None
    rows = [(k, image) for k, image, touched in current if not touched] + restored
    rows = sorted((r for r in rows if bound is None or r[0] <= bound), key=lambda r: r[0])
    docs = [table.document(json.loads(image), position.ts) for _, image in rows[:limit]]
    if len(rows) > limit:
        return docs, rows[limit - 1][0], True
    return docs, bound, bound is not None


def _largest_key(cursor: Any, table: Table) -> str | None:
    # ORDER BY, not max(): uuid has no max(). Qualified (t.), or ORDER BY would name the
    # text output column and sort "99" after "300".
    key = f"t.{quote_ident(table.pk)}"
    cursor.execute(
        f"SELECT {key}::text FROM {quote_ident(table.name)} t ORDER BY {key} DESC LIMIT 1"
    )
    row = cursor.fetchone()
    return None if row is None else str(row[0])


def _decode_token(token: str | None, names: list[str]) -> tuple[str | None, str | None]:
    if token is None:
        return None, None
    try:
        table, after = json.loads(token)
    except (ValueError, TypeError):
        raise BadRequest(
            "'cursor' is not a cursor this server returned.", code="BadCursor"
        ) from None
    if table is None:
        return None, None
    if table not in names or not (after is None or isinstance(after, str)):
        raise BadRequest("'cursor' belongs to another listing.", code="BadCursor")
    return table, after


# -- document_deltas --------------------------------------------------------------------------


def document_deltas(ts: int, table_name: str | None, limit: int | None = None) -> Page:
    """The changes after cursor ``ts`` in commit order (per document), up to ``limit``."""
    limit = limit or reactive_settings().EXPORT_PAGE_SIZE
    tables = exported_tables()
    if table_name is not None:
        table_named(table_name)
    with snapshot_transaction() as cursor:
        position = positions.load(cursor, ts)
        upto = position.upto or current_snapshot(cursor)
        params = {"base": position.base, "upto": upto, "after": position.after_id,
                  "tbl": table_name, "n": limit + 1}
        cursor.execute(
            "SELECT id, tbl, op, old_row::text, new_row::text FROM reactive_change "
            f"WHERE {AFTER_RANGE} AND pg_visible_in_snapshot(txid, %(upto)s::pg_snapshot) "
            "AND id > %(after)s AND (%(tbl)s::text IS NULL OR tbl = %(tbl)s) "
            "ORDER BY id LIMIT %(n)s", params,
        )
        rows = cursor.fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        if not rows and position.upto is None:
            return Page([], position.ts, False)  # nothing new: the same cursor
        if has_more:
            new = positions.save(cursor, position.base, upto, rows[-1][0])
        else:
            new = positions.save(cursor, upto)
        values = [v for row in rows for v in _delta(tables, row, new.ts)]
    return Page(values, new.ts, has_more)


def _delta(tables: dict[str, Table], row: tuple[Any, ...], ts: int) -> list[dict[str, Any]]:
    _, name, op, old, new = row
    table = tables.get(name)
    if table is None:
        return []  # a table no longer exported
    if op == "T":
        raise CursorExpired(
            f"Table {name!r} was truncated after this cursor; a TRUNCATE does not list the "
            "rows it removed, so take a new snapshot with /api/list_snapshot.", str(ts),
        )
    if new is not None:
        return [table.document(json.loads(new), ts)]
    image = json.loads(old)
    return [{"_id": str(image[table.pk]), "_deleted": True, "_ts": ts}]


def _refuse_truncate(cursor: Any, table: Table, position: positions.Position) -> None:
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM reactive_change WHERE tbl = %(tbl)s AND op = 'T' "
        f"AND {AFTER_RANGE})", {"tbl": table.name, "base": position.base},
    )
    if cursor.fetchone()[0]:
        raise CursorExpired(
            f"Table {table.name!r} was truncated during this listing; start a new snapshot.",
            str(position.ts),
        )




