"""Snapshot export: every exported table (or one) written at one database snapshot, streamed
row by row, as Convex's snapshot ZIP (``<table>/documents.jsonl``), or one table as JSONL/CSV."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import models

from reactive.export.render import document_lines
from reactive.export.stream import snapshot_transaction
from reactive.export.tables import Table, exported_tables, table_named
from reactive.sql import quote_ident

# progress(table, rows done, rows expected): called after every batch of rows.
Progress = Callable[[str, int, int], None]
README = """This is a snapshot export of a django-reactivity database, in the layout of a Convex
snapshot export: <table>/documents.jsonl holds one document per line, and
<table>/generated_schema.jsonl one line, the table's JSON Schema (as /api/json_schemas serves
it; not Convex's shape syntax). Every table was read at the same database snapshot.
Import it with: manage.py reactive_import PATH.zip
"""


def export_zip(path: Path, tables: list[str] | None = None, progress: Progress | None = None,
               using: str = "default") -> dict[str, int]:
    """Write the ZIP at ``path``; return rows written per table. Memory stays flat: Postgres
    renders the documents and streams them (``COPY``), compressed as they arrive."""
    chosen = _choose(tables)
    counts: dict[str, int] = {}
    with snapshot_transaction(using) as cursor, zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
    ) as archive:
        archive.writestr("README.md", README)
        for table in chosen:
            archive.writestr(f"{table.name}/generated_schema.jsonl",
                             json.dumps(json.dumps(table.schema())) + "\n")
            expected = _count(cursor, table) if progress else 0
            with archive.open(f"{table.name}/documents.jsonl", "w", force_zip64=True) as out:
                counts[table.name] = _write_all(table, using, expected, progress, out.write)
    return counts


def export_table(path: Path, table_name: str, fmt: str, progress: Progress | None = None,
                 using: str = "default") -> int:
    """Write one table as JSONL (one document per line) or CSV (a header row of field names,
    then one row per document, cells as :func:`_csv_cell` writes them); return the rows
    written."""
    table = table_named(table_name)
    with snapshot_transaction(using) as cursor:
        expected = _count(cursor, table) if progress else 0
        if fmt == "jsonl":
            with path.open("wb") as binary:
                return _write_all(table, using, expected, progress, binary.write)
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(table.schema()["properties"]),
                                    extrasaction="ignore")
            writer.writeheader()

            as_json = {str(f.column) for f in table.model._meta.concrete_fields
                       if isinstance(f, models.JSONField)}

            def write_rows(chunk: bytes) -> None:
                writer.writerows({key: _csv_cell(value, key in as_json)
                                  for key, value in json.loads(line).items()}
                                 for line in chunk.splitlines())

            return _write_all(table, using, expected, progress, write_rows)


def _choose(tables: list[str] | None) -> list[Table]:
    if not tables:
        return list(exported_tables().values())
    return [table_named(name) for name in tables]


def _count(cursor: Any, table: Table) -> int:
    """The rows the progress bar expects (a scan of its own: only when a bar is drawn)."""
    cursor.execute(f"SELECT count(*) FROM {quote_ident(table.name)}")
    return int(cursor.fetchone()[0])


def _write_all(table: Table, using: str, expected: int, progress: Progress | None,
               write: Callable[[bytes], Any]) -> int:
    """``write`` the table's document lines batch by batch, reporting progress; return how
    many."""
    done = 0
    for count, chunk in document_lines(table, using):
        write(chunk)
        done += count
        if progress:
            progress(table.name, done, expected)
    if progress and not done:
        progress(table.name, 0, expected)
    return done


def _csv_cell(value: Any, as_json: bool) -> Any:
    """A cell as the CSV import reads it back: JSON text for JSONField values (so the string
    "1" and the number 1 stay apart) and arrays, true/false, null as an empty cell."""
    if value is None:
        return ""
    if as_json or isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


