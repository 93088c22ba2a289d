"""Reading a reaction's pending changes from the change log, and turning row images into
model instances.

A window is the set of changes committed between two snapshots (the visibility test of
docs/internals/reactor.md); inside it changes are ordered by (txid, log id). ``where`` is
compiled by Django to SQL over the model's table and evaluated by Postgres on each logged
image (``jsonb_populate_record``), so it means exactly what ``filter(where)`` means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Model

from reactive.exceptions import DefinitionError
from reactive.reactions.definitions import Change, OnChange, Op
from reactive.sql import quote_ident

OP_NAMES: dict[str, Op] = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}


@dataclass(frozen=True)
class LoggedChange:
    """A change row and whether it matches the reaction."""

    log_id: int
    txid: int
    op: str
    matches: bool


@dataclass(frozen=True)
class Window:
    """What one read of the log found after the cursor."""

    scanned: list[LoggedChange]
    exhausted: bool  # nothing more in the window after the last scanned row

    @property
    def matching(self) -> list[LoggedChange]:
        return [c for c in self.scanned if c.matches]


def where_sql(reaction: OnChange[Any], using: str = "default") -> tuple[str, list[Any]]:
    """The SQL condition of ``reaction.where`` over the model's table (``TRUE`` when none).

    Raises DefinitionError when the condition needs another table (a join).
    """
    if reaction.where is None:
        return "TRUE", []
    model = reaction.model
    query = model._base_manager.filter(reaction.where).query
    compiler = query.get_compiler(using=using)
    sql, params = compiler.compile(query.where)
    # Joins Django set up and then trimmed (author__isnull on the key column) have no refs.
    if sum(1 for refs in query.alias_refcount.values() if refs) > 1:
        raise DefinitionError(
            f"@on_change({model._meta.label}) where={reaction.where!r} reaches another table; "
            "use only the model's own columns (a change carries only its own row)."
        )
    return sql or "TRUE", list(params)


def match_sql(reaction: OnChange[Any], alias: str = "c") -> tuple[str, list[Any]]:
    """The SQL condition that change row ``alias`` is one ``reaction`` handles: one of its
    ops, and ``where`` true of the old or the new image (a truncate always matches)."""
    table = reaction.model._meta.db_table
    condition, params = where_sql(reaction)
    image = f"jsonb_populate_record(NULL::{quote_ident(table)}, {alias}.%s) " \
            f"AS {quote_ident(table)}"
    old_match = f"({alias}.old_row IS NOT NULL AND EXISTS (SELECT 1 FROM " \
                f"{image % 'old_row'} WHERE {condition}))"
    new_match = f"({alias}.new_row IS NOT NULL AND EXISTS (SELECT 1 FROM " \
                f"{image % 'new_row'} WHERE {condition}))"
    return (f"({alias}.op = ANY(%s) AND ({alias}.op = 'T' OR {old_match} OR {new_match}))",
            [list(reaction.op_codes), *params, *params])


def read_window(
    cursor: Any, reaction: OnChange[Any], *, snapshot: str, window_end: str,
    after: tuple[int, int], exclude: list[int], limit: int,
) -> Window:
    """Changes of the reaction's table in (``snapshot``, ``window_end``] after ``after``,
    skipping the transactions in ``exclude``, at most ``limit`` rows."""
    match, params = match_sql(reaction)
    cursor.execute(
        f"SELECT c.id, c.txid::text::bigint, c.op, {match} FROM reactive_change c "
        "WHERE c.tbl = %s AND c.txid >= pg_snapshot_xmin(%s::pg_snapshot) "
        "AND NOT pg_visible_in_snapshot(c.txid, %s::pg_snapshot) "
        "AND pg_visible_in_snapshot(c.txid, %s::pg_snapshot) "
        "AND (c.txid, c.id) > (%s::text::xid8, %s) "
        "AND NOT (c.txid::text::bigint = ANY(%s)) ORDER BY c.txid, c.id LIMIT %s",
        [*params, reaction.model._meta.db_table, snapshot, snapshot, window_end,
         str(after[0]), after[1], exclude, limit],
    )
    rows = [LoggedChange(int(i), int(t), op, bool(m)) for i, t, op, m in cursor.fetchall()]
    return Window(rows, exhausted=len(rows) < limit)


def matching_since(cursor: Any, reaction: OnChange[Any], snapshot: str,
                   exclude: list[int]) -> bool:
    """Whether a change committed after ``snapshot`` (not by a transaction in ``exclude``)
    is one the reaction handles."""
    match, params = match_sql(reaction)
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM reactive_change c WHERE c.tbl = %s "
        "AND c.txid >= pg_snapshot_xmin(%s::pg_snapshot) "
        "AND NOT pg_visible_in_snapshot(c.txid, %s::pg_snapshot) "
        f"AND NOT (c.txid::text::bigint = ANY(%s)) AND {match})",
        [reaction.model._meta.db_table, snapshot, snapshot, exclude, *params],
    )
    found = cursor.fetchone()
    return bool(found and found[0])


def load_changes(reaction: OnChange[Any], logged: list[LoggedChange],
                 using: str = "default") -> list[Change[Any]]:
    """``Change`` objects for ``logged``, with typed model instances for the row images.

    Postgres rebuilds each image as a row of the table (``jsonb_populate_record``) and Django
    reads it like any row, so every field gets its usual Python type.
    """
    model = reaction.model
    ids = [c.log_id for c in logged]
    old = _images(model, "old_row", ids, using)
    new = _images(model, "new_row", ids, using)
    return [
        Change(op=OP_NAMES[c.op], old=old.get(c.log_id), new=new.get(c.log_id), txid=c.txid,
               log_id=c.log_id, table=model._meta.db_table)
        for c in logged
    ]


def _images(model: type[Model], column: str, ids: list[int], using: str) -> dict[int, Any]:
    table = quote_ident(model._meta.db_table)
    rows = model._base_manager.db_manager(using).raw(
        f"SELECT r.*, c.id AS reactive_log_id FROM reactive_change c, "
        f"LATERAL jsonb_populate_record(NULL::{table}, c.{column}) r "
        f"WHERE c.id = ANY(%s) AND c.{column} IS NOT NULL",
        [ids],
    )
    return {row.reactive_log_id: row for row in rows}  # type: ignore[attr-defined]


