"""``manage.py reactive_schema TABLE``: the tracked shape of a schema-free table as JSON Schema;
``--enforce`` / ``--no-enforce`` switch validation of later writes; ``--model`` prints a model."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from reactive.documents import modelgen, move
from reactive.documents import shape as shapes
from reactive.documents.validation import check_table
from reactive.exceptions import DocumentError
from reactive.models import DocumentShape


class Command(BaseCommand):
    help = ("Show a schema-free table's shape as JSON Schema; enforce it on later writes "
            "(--enforce) or print a Django model for it (--model).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("table", help="the document table, as named in ctx.db calls")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--enforce", action="store_true",
                          help="validate every later write against the current shape")
        mode.add_argument("--no-enforce", action="store_true",
                          help="stop validating; the shape widens again as documents arrive")
        mode.add_argument("--model", action="store_true",
                          help="print a Django model for the shape")
        mode.add_argument("--move", metavar="APP_LABEL.MODEL", default=None,
                          help="move every document into this model's table, in batches")
        parser.add_argument("--db-table", default=None,
                            help="with --model: the model's Meta.db_table")
        mode.add_argument("--migration", metavar="APP_LABEL", default=None,
                          help="write a migration into APP_LABEL that creates the model and "
                          "moves every document into it")
        parser.add_argument("--batch-size", type=int, default=500,
                            help="with --move: documents per transaction (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            table = check_table(options["table"])
        except DocumentError as exc:
            raise CommandError(str(exc)) from None
        if options["move"]:
            self._move(table, options["move"], options["batch_size"])
            return
        with transaction.atomic():
            row = DocumentShape.objects.select_for_update().filter(pk=table).first()
            if row is None:
                raise CommandError(f"No documents were ever written to {table!r}, so it has no "
                                   "shape yet. Check the name, or insert documents first.")
            if options["enforce"] or options["no_enforce"]:
                row.enforced = bool(options["enforce"])
                row.save(update_fields=["enforced", "updated_at"])
                state = "enforced on every later write" if row.enforced else "no longer enforced"
                self.stdout.write(f"The shape of {table!r} is {state}.")
                return
        if options["migration"]:
            self._write_migration(table, row.shape, options["migration"], options["batch_size"])
            return
        if options["model"]:
            self.stdout.write(modelgen.model_source(table, row.shape, options["db_table"]))
            return
        self.stdout.write(json.dumps(shapes.json_schema(row.shape, table), indent=2))

    def _move(self, table: str, label: str, batch_size: int) -> None:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise CommandError(f"--move needs an installed model as APP_LABEL.MODEL; "
                               f"{label!r} is not one.") from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            moved = move.move_documents(
                table, model, batch_size=batch_size,
                progress=lambda n: self.stdout.write(f"moved {n} documents"))
        except DocumentError as exc:
            raise CommandError(f"{exc} (batches before this one were moved.)") from None
        self.stdout.write(f"Moved {moved} documents of {table!r} into {model._meta.label}.")

    def _write_migration(self, table: str, shape: dict[str, Any], app_label: str,
                         batch_size: int) -> None:
        from django.db.migrations.loader import MigrationLoader

        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            apps.get_app_config(app_label)
        except LookupError:
            raise CommandError(f"--migration needs an installed app label; {app_label!r} "
                               "is not one.") from None
        loader = MigrationLoader(None, ignore_no_migrations=True)
        module_name, _ = loader.migrations_module(app_label)
        if module_name is None:
            raise CommandError(f"The app {app_label!r} has migrations disabled.")
        leaves = loader.graph.leaf_nodes(app_label)
        depends = [*loader.graph.leaf_nodes("reactive"), *leaves]
        number = max((int(name[:4]) for _, name in leaves if name[:4].isdigit()), default=0) + 1
        module = importlib.import_module(module_name)
        path = Path(next(iter(module.__path__))) / f"{number:04d}_move_{table.lower()}.py"
        path.write_text(modelgen.migration_source(table, shape, app_label, depends, batch_size))
        self.stdout.write(modelgen.model_source(table, shape))
        self.stdout.write(f"Wrote {path}. Paste the model above into {app_label}/models.py, "
                          "then run migrate.")
