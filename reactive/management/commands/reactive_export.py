"""``manage.py reactive_export PATH.zip [--table T ...]``, or one table as JSONL/CSV:
``reactive_export PATH.jsonl --table T --format jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.exceptions import RequestError
from reactive.export import dump
from reactive.export.progress import bars


class Command(BaseCommand):
    help = "Export tables at one database snapshot: a Convex snapshot ZIP, or one table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--table", action="append", dest="tables", metavar="TABLE",
                            help="Export only this table (repeatable).")
        parser.add_argument("--format", choices=["zip", "jsonl", "csv"], default=None,
                            help="Default: from the file name; jsonl and csv need one --table.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        fmt = options["format"] or (path.suffix.lstrip(".").lower() or "zip")
        tables = options["tables"] or []
        if fmt not in {"zip", "jsonl", "csv"}:
            raise CommandError(f"Cannot tell the format of {path}: pass --format.")
        if fmt != "zip" and len(tables) != 1:
            raise CommandError(f"--format {fmt} exports one table: pass exactly one --table.")
        try:
            with bars(self.stderr, enabled=not options["no_progress"]) as progress:
                if fmt == "zip":
                    counts = dump.export_zip(path, tables, progress)
                else:
                    counts = {tables[0]: dump.export_table(path, tables[0], fmt, progress)}
        except RequestError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"exported {sum(counts.values())} rows from {len(counts)} tables "
                          f"to {path}")
