"""Snapshot export: every exported table (or one) written at one database snapshot, streamed
row by row, as Convex's snapshot ZIP (``<table>/documents.jsonl``), or one table as JSONL/CSV."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.db import connections

from reactive.export.stream import snapshot_transaction
from reactive.export.tables import Table, exported_tables, table_named
from reactive.sql import quote_ident

# progress(table, rows done, rows expected): called every BATCH rows and at each table's end.
Progress = Callable[[str, int, int], None]
BATCH = 2000
README = """This is a snapshot export of a django-reactivity database, in the layout of a Convex
snapshot export: <table>/documents.jsonl holds one document per line, and
<table>/generated_schema.jsonl one line, the table's JSON Schema (as /api/json_schemas serves
it; not Convex's shape syntax). Every table was read at the same database snapshot.
Import it with: manage.py reactive_import PATH.zip
"""


def export_zip(path: Path, tables: list[str] | None = None, progress: Progress | None = None,
               using: str = "default") -> dict[str, int]:
    """Write the ZIP at ``path``; return rows written per table. Memory stays flat: rows are
    fetched through a server-side cursor and compressed as they are written."""
    chosen = _choose(tables)
    counts: dict[str, int] = {}
    with snapshot_transaction(using) as cursor, zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
    ) as archive:
        archive.writestr("README.md", README)
        for table in chosen:
            archive.writestr(f"{table.name}/generated_schema.jsonl",
                             json.dumps(json.dumps(table.schema())) + "\n")
            expected = _count(cursor, table)
            with archive.open(f"{table.name}/documents.jsonl", "w", force_zip64=True) as raw:
                out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
                counts[table.name] = _write_lines(
                    out, table, _documents(using, table), expected, progress
                )
                out.flush()
                out.detach()
    return counts


def export_table(path: Path, table_name: str, fmt: str, progress: Progress | None = None,
                 using: str = "default") -> int:
    """Write one table as JSONL (one document per line) or CSV (one column per field, nested
    values as JSON text); return the rows written."""
    table = table_named(table_name)
    with snapshot_transaction(using) as cursor, path.open("w", encoding="utf-8",
                                                          newline="") as out:
        expected = _count(cursor, table)
        if fmt == "jsonl":
            return _write_lines(out, table, _documents(using, table), expected, progress)
        columns = list(table.schema()["properties"])
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        return _write_all(table, _documents(using, table), expected, progress,
                          lambda doc: writer.writerow({k: _csv_cell(v) for k, v in doc.items()}))


def _choose(tables: list[str] | None) -> list[Table]:
    if not tables:
        return list(exported_tables().values())
    return [table_named(name) for name in tables]


def _count(cursor: Any, table: Table) -> int:
    cursor.execute(f"SELECT count(*) FROM {quote_ident(table.name)}")
    return int(cursor.fetchone()[0])


def _documents(using: str, table: Table) -> Iterator[dict[str, Any]]:
    """The table's documents in key order, through a server-side cursor of the open
    transaction (so at its snapshot)."""
    raw = connections[using].connection
    with raw.cursor(name=f"reactive_export_{table.name}") as server_side:
        server_side.itersize = BATCH
        server_side.execute(
            f"SELECT to_jsonb(t)::text FROM {quote_ident(table.name)} t "
            f"ORDER BY {quote_ident(table.pk)}"
        )
        for (text,) in server_side:
            yield table.document(json.loads(text))


def _write_lines(out: Any, table: Table, docs: Iterator[dict[str, Any]], expected: int,
                 progress: Progress | None) -> int:
    return _write_all(table, docs, expected, progress,
                      lambda doc: out.write(json.dumps(doc, separators=(",", ":")) + "\n"))


def _write_all(table: Table, docs: Iterator[dict[str, Any]], expected: int,
               progress: Progress | None, write: Callable[[dict[str, Any]], Any]) -> int:
    """``write`` each document, reporting progress every ``BATCH``; return how many."""
    done = 0
    for doc in docs:
        write(doc)
        done += 1
        if progress and done % BATCH == 0:
            progress(table.name, done, expected)
    if progress:
        progress(table.name, done, expected)
    return done


def _csv_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


