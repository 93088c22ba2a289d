"""``manage.py reactive_import PATH.zip [--table T] [--append | --replace]``, or one table's
JSONL or CSV: ``reactive_import PATH.csv --table T``. Atomic per table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.exceptions import RequestError
from reactive.export import load
from reactive.export.progress import bars
from reactive.export.tables import table_named

FORMATS = ("zip", "jsonl", "csv")


class Command(BaseCommand):
    help = ("Import a snapshot ZIP (or one table's JSONL or CSV); each table commits whole or "
            "not at all.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--table", action="append", dest="tables", metavar="TABLE",
                            help="Import only this table (repeatable; one for JSONL and CSV).")
        parser.add_argument("--format", choices=FORMATS, default=None,
                            help="Default: from the file name (.jsonl, .csv, else zip).")
        modes = parser.add_mutually_exclusive_group()
        modes.add_argument("--append", action="store_const", const="append", dest="mode",
                           help="Add to the rows already there.")
        modes.add_argument("--replace", action="store_const", const="replace", dest="mode",
                           help="Delete the table's rows first.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        mode = options["mode"] or "require_empty"
        tables = options["tables"] or []
        suffix = path.suffix.lstrip(".").lower()
        fmt = options["format"] or (suffix if suffix in FORMATS else "zip")
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        if fmt != "zip" and len(tables) != 1:
            raise CommandError(f"A {fmt.upper()} file holds one table: pass one --table.")
        try:
            with bars(self.stderr, enabled=not options["no_progress"]) as progress:
                if fmt == "zip":
                    counts = load.import_zip(path, tables, mode, progress)
                else:
                    read = load.import_lines if fmt == "jsonl" else load.import_csv
                    # utf-8-sig: a spreadsheet's CSV often starts with a byte order mark
                    with path.open(encoding="utf-8-sig", newline="") as lines:
                        counts = {tables[0]: read(table_named(tables[0]), lines, mode, progress)}
        except RequestError as exc:
            raise CommandError(str(exc)) from None
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text ({exc}).") from None
        self.stdout.write(f"imported {sum(counts.values())} rows into {len(counts)} tables")
