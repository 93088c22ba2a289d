"""The ``_system/cli/*`` functions the official Convex CLI calls over the sync protocol with
the admin key: tables, a table's documents, the latest snapshot export and the imports.
Internal queries, so only the admin key (or other functions) can call them.

All opt in to untracked reads. ``tables`` and ``tableData`` read the catalog (which tables
exist is schema, not data: no trigger sees it); ``tableData``'s rows are tracked as usual. The
job functions read ``reactive_snapshotjob``, which has no capture triggers, but a job's state is
final before the CLI subscribes (exports and imports run inside the request that starts them),
so a subscription never waits on a change."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from reactive.exceptions import FunctionError
from reactive.export.tables import exported_tables
from reactive.functions.definitions import internal_query
from reactive.functions.registry import Registry
from reactive.values import Int64

PAGE_MAX = 10_000


def _page_opts(opts: dict[str, Any] | None) -> tuple[str | None, int]:
    opts = opts or {}
    cursor = opts.get("cursor")
    size = opts.get("numItems", 100)
    if not isinstance(size, (int, float)) or size < 1:
        raise FunctionError({"message": "paginationOpts.numItems must be a positive number."})
    return (cursor if isinstance(cursor, str) and cursor else None), min(int(size), PAGE_MAX)


@internal_query(name="_system/cli/tables:default", untracked_reads="warn")
def tables(ctx: Any, paginationOpts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every exported table as ``{name}``, one page."""
    cursor, size = _page_opts(paginationOpts)
    names = [name for name in exported_tables() if cursor is None or name > cursor][: size + 1]
    done = len(names) <= size
    names = names[:size]
    return {"page": [{"name": name} for name in names], "isDone": done,
            "continueCursor": names[-1] if names else (cursor or "")}


@internal_query(name="_system/cli/tableData:default", untracked_reads="warn")
def table_data(ctx: Any, table: str, order: str = "desc",
               paginationOpts: dict[str, Any] | None = None) -> dict[str, Any]:
    """A page of a table's documents, newest (highest key) first unless ``order='asc'``."""
    known = exported_tables()
    if table not in known:
        raise FunctionError({"message": f"No table named {table!r}."})
    if order not in ("asc", "desc"):
        raise FunctionError({"message": "order must be 'asc' or 'desc'."})
    exported = known[table]
    cursor, size = _page_opts(paginationOpts)
    # Qualified: a bare name in ORDER BY would be the text output column, not the key.
    key, name = f't."{exported.pk}"', f'"{exported.name}"'
    direction, compare = ("DESC", "<") if order == "desc" else ("ASC", ">")
    with connection.cursor() as db:
        db.execute(
            f"SELECT {key}::text, to_jsonb(t)::text FROM {name} t WHERE %s::text IS NULL OR "
            f"{key} {compare} %s::{exported.pk_type} ORDER BY {key} {direction} LIMIT %s",
            [cursor, cursor, size + 1],
        )
        rows = db.fetchall()
    page = [exported.document(json.loads(image)) for _, image in rows[:size]]
    last = rows[: size][-1][0] if rows[:size] else (cursor or "")
    return {"page": page, "isDone": len(rows) <= size, "continueCursor": last}


@internal_query(name="_system/cli/exports:getLatest", untracked_reads="warn")
def latest_export(ctx: Any) -> dict[str, Any] | None:
    """The newest snapshot export's state (``requested``/``completed``/``failed``)."""
    job = _latest("export")
    if job is None:
        return None
    state = dict(job)
    if "start_ts" in state:
        state["start_ts"] = Int64(int(state["start_ts"]))
    return state


@internal_query(name="_system/cli/queryImport:list", untracked_reads="warn")
def list_imports(ctx: Any) -> list[dict[str, Any]]:
    """Recent imports as ``{_id, state}``."""
    with connection.cursor() as db:
        db.execute("SELECT id, state::text FROM reactive_snapshotjob WHERE kind = 'import' "
                   "ORDER BY id DESC LIMIT 20")
        return [{"_id": str(i), "state": json.loads(s)} for i, s in db.fetchall()]


@internal_query(name="_system/cli/queryImport:default", untracked_reads="warn")
def query_import(ctx: Any, importId: str) -> dict[str, Any] | None:
    """One import's ``{_id, state}``."""
    if not importId.isdigit():
        raise FunctionError({"message": f"{importId!r} is not an import id."})
    with connection.cursor() as db:
        db.execute("SELECT state::text FROM reactive_snapshotjob WHERE kind = 'import' "
                   "AND id = %s", [int(importId)])
        row = db.fetchone()
    return None if row is None else {"_id": importId, "state": json.loads(row[0])}


def _latest(kind: str) -> dict[str, Any] | None:
    with connection.cursor() as db:
        db.execute("SELECT state::text FROM reactive_snapshotjob WHERE kind = %s "
                   "ORDER BY id DESC LIMIT 1", [kind])
        row = db.fetchone()
    return None if row is None else dict(json.loads(row[0]))


SYSTEM_FUNCTIONS = (tables, table_data, latest_export, list_imports, query_import)


def register(functions: Registry) -> None:
    """Add the CLI's system functions to ``functions`` (the app does this at start-up)."""
    for definition in SYSTEM_FUNCTIONS:
        if definition.name not in functions:
            functions.register(definition)
