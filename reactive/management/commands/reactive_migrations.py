"""``manage.py reactive_migrations run NAME [--dry-run] [--batch-size N] [--inline]``,
``status [NAME]``, ``cancel NAME``, ``list``: run and follow ``@migration`` data migrations."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.datamigrations import control
from reactive.exceptions import DataMigrationError


class Command(BaseCommand):
    help = "Run, follow, cancel and list data migrations (@migration)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="schedule a migration on Celery and follow it")
        run.add_argument("name")
        run.add_argument("--dry-run", action="store_true",
                         help="run every batch and roll it back, reporting what would change")
        run.add_argument("--batch-size", type=int, default=None)
        run.add_argument("--inline", action="store_true",
                         help="run it in this process instead of on a Celery worker")
        status = sub.add_parser("status", help="state, cursor, counts and last error")
        status.add_argument("name", nargs="?")
        cancel = sub.add_parser("cancel", help="stop after the current batch")
        cancel.add_argument("name")
        sub.add_parser("list", help="every data migration the code declares")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except DataMigrationError as exc:
            raise CommandError(str(exc)) from exc

    def _handle(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "run":
            state = control.run(options["name"], dry_run=options["dry_run"],
                                batch_size=options["batch_size"], inline=options["inline"],
                                out=self.stdout)
            if state == "failed":
                raise CommandError(f"{options['name']} failed; see reactive_migrations status.")
        elif action == "status":
            for line in control.status_lines(options["name"]):
                self.stdout.write(line)
        elif action == "cancel":
            control.cancel(options["name"])
            self.stdout.write(f"{options['name']}: canceled; 'run' resumes it")
        else:
            for line in control.list_lines():
                self.stdout.write(line)
