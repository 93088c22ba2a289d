"""Snapshot import: documents from a snapshot ZIP (or one table's JSONL or CSV) written back
into their tables, one transaction per table (all of a table's rows or none), in batches.

Modes, as Convex's CLI has them: ``require_empty`` (default: refuse a table that has rows),
``append`` (add the rows; an existing ``_id`` fails the table), ``replace`` (delete the rows
first). Tables are loaded parents first, so foreign keys hold at each commit.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.color import no_style
from django.db import DatabaseError, connections, transaction

from reactive.exceptions import BadRequest
from reactive.export.csvrows import csv_rows
from reactive.export.tables import Table, exported_tables
from reactive.sql import quote_ident

MODES = ("require_empty", "append", "replace")
BATCH = 1000
SYSTEM_FIELDS = ("_id", "_creationTime", "_ts", "_deleted")
Progress = Callable[[str, int, int], None]


def zip_tables(path: Path) -> dict[str, int]:
    """The tables in a snapshot ZIP and the size of each one's documents.jsonl (bytes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename.split("/")[0]: info.file_size for info in archive.infolist()
                    if info.filename.count("/") == 1
                    and info.filename.endswith("/documents.jsonl")
                    and not info.filename.startswith("_")}
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadRequest(f"{path} is not a readable ZIP file: {exc}.", code="BadImport") from None


def import_zip(path: Path, tables: list[str] | None = None, mode: str = "require_empty",
               progress: Progress | None = None, using: str = "default") -> dict[str, int]:
    """Import every table of the ZIP (or those named); return rows written per table."""
    found = zip_tables(path)
    names = tables or list(found)
    missing = [name for name in names if name not in found]
    if missing:
        raise BadRequest(f"The ZIP holds no documents for {', '.join(missing)}.",
                         code="BadImport")
    known = exported_tables()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadRequest(f"No exported table is called {', '.join(unknown)} here; exported "
                         f"tables: {', '.join(known) or 'none'}.", code="BadImport")
    counts = {}
    with zipfile.ZipFile(path) as archive:
        for table in _parents_first([known[name] for name in names]):
            with archive.open(f"{table.name}/documents.jsonl") as raw:
                stream = io.TextIOWrapper(raw, encoding="utf-8")
                counts[table.name] = import_lines(table, stream, mode, progress, using)
    return counts


def import_lines(table: Table, lines: IO[str], mode: str, progress: Progress | None = None,
                 using: str = "default") -> int:
    """Load JSONL documents into ``table`` in one transaction; return the rows written.

    Raises BadRequest naming the line for a malformed document or a rejected row; then
    nothing of this table was written.
    """
    return _import(table, _jsonl_rows(table, lines), "line", mode, progress, using)


def import_csv(table: Table, lines: IO[str], mode: str, progress: Progress | None = None,
               using: str = "default") -> int:
    """Load one table's CSV (a header row of field names, then one row per document, each cell
    typed by its model field) in one transaction; return the rows written.

    Raises BadRequest naming the row and column of a bad cell, or the row a constraint
    refused; then nothing of this table was written.
    """
    return _import(table, csv_rows(table, lines), "row", mode, progress, using)


def _import(table: Table, rows: Iterable[tuple[int, dict[str, Any]]], unit: str, mode: str,
            progress: Progress | None, using: str) -> int:
    if mode not in MODES:
        raise BadRequest(f"Unknown import mode {mode!r}; use one of {', '.join(MODES)}.")
    try:
        return _load(table, rows, unit, mode, progress, using)
    except DatabaseError as exc:  # a deferred foreign key fails at commit
        raise BadRequest(f"Table {table.name!r}: the import was refused at commit ({exc}); "
                         "nothing was imported into this table.", code="BadImport") from None


def _load(table: Table, rows: Iterable[tuple[int, dict[str, Any]]], unit: str, mode: str,
          progress: Progress | None, using: str) -> int:
    done = 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        name = quote_ident(table.name)
        cursor.execute(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
        if mode == "replace":
            cursor.execute(f"DELETE FROM {name}")
        elif mode == "require_empty":
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
            if cursor.fetchone()[0]:
                raise BadRequest(
                    f"Table {table.name!r} is not empty; import with --append or --replace.",
                    code="TableNotEmpty",
                )
        for batch in _batches(rows):
            _insert(cursor, table, batch, unit, using)
            done += len(batch)
            if progress:
                progress(table.name, done, 0)
        for statement in connections[using].ops.sequence_reset_sql(no_style(), [table.model]):
            cursor.execute(statement)
    return done


def _insert(cursor: Any, table: Table, batch: list[tuple[int, dict[str, Any]]], unit: str,
            using: str) -> None:
    """Insert a batch; when Postgres refuses it, find the first refused row (one savepoint
    each, only on this failure path) and name it."""
    name = quote_ident(table.name)
    statement = (f"INSERT INTO {name} SELECT * FROM "
                 f"jsonb_populate_recordset(NULL::{name}, %s::jsonb)")
    try:
        with transaction.atomic(using=using):
            cursor.execute(statement, [json.dumps([row for _, row in batch])])
        return
    except DatabaseError as exc:
        refused = exc
    where = f"{unit}s {batch[0][0]}-{batch[-1][0]}"  # if only the batch as a whole fails
    for number, row in batch:
        try:
            with transaction.atomic(using=using):
                cursor.execute(statement, [json.dumps([row])])
        except DatabaseError as exc:
            refused, where = exc, f"{unit} {number}"
            break
    raise BadRequest(f"Table {table.name!r}: {where} was refused ({refused}); nothing was "
                     "imported into this table.", code="BadImport") from None


def _batches(rows: Iterable[tuple[int, dict[str, Any]]]
             ) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    batch: list[tuple[int, dict[str, Any]]] = []
    for numbered in rows:
        batch.append(numbered)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _jsonl_rows(table: Table, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, _row(table, line, number)


def _row(table: Table, line: str, number: int) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise BadRequest(f"Table {table.name!r}, line {number}: not JSON ({exc}).",
                         code="BadImport") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("_id"), str):
        raise BadRequest(f"Table {table.name!r}, line {number}: expected a document object "
                         "with a string '_id'.", code="BadImport")
    row = {key: value for key, value in doc.items() if key not in SYSTEM_FIELDS}
    row[table.pk] = doc["_id"]
    return row


def _parents_first(tables: list[Table]) -> list[Table]:
    """Order tables so that one referenced by a foreign key is loaded before its referrers."""
    by_model = {t.model: t for t in tables}
    ordered: list[Table] = []
    seen: set[str] = set()

    def visit(table: Table, path: tuple[str, ...]) -> None:
        if table.name in seen or table.name in path:
            return  # done, or a cycle: deferred constraints must carry it
        for field in table.model._meta.concrete_fields:
            target = getattr(field, "related_model", None)
            if target in by_model and target is not table.model:
                visit(by_model[target], (*path, table.name))
        seen.add(table.name)
        ordered.append(table)

    for table in tables:
        visit(table, ())
    return ordered


