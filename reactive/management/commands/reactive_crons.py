"""``manage.py reactive_crons``: each declared cron with its schedule, function and next runs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from reactive.models import Cron
from reactive.scheduling import crons


class Command(BaseCommand):
    help = "List the crons declared in <app>/crons.py with their next runs (UTC)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=3, help="Next runs to show per cron.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        try:
            rows = {row.name: row for row in Cron.objects.all()}
        except DatabaseError as exc:  # still useful without a database: times from the code
            self.stderr.write(f"Database unavailable ({exc}); next runs are counted from now.")
            rows = {}
        specs = list(crons.registry)
        if not specs:
            self.stdout.write("No crons declared (add them to <app>/crons.py).")
        for spec in specs:
            row = rows.get(spec.name)
            first = row.next_run_at if row is not None and row.active else None
            runs = spec.next_runs(now, options["count"], first)
            self.stdout.write(
                f"{spec.name}\n  schedule: {spec.schedule.describe()}\n"
                f"  function: {spec.function_name}\n"
                f"  next runs: {', '.join(f'{at:%Y-%m-%d %H:%M:%S}Z' for at in runs)}"
            )
        for name, row in rows.items():
            if not row.active and crons.registry.get(name) is None:
                retired = f"{row.retired_at:%Y-%m-%d %H:%M:%S}Z" if row.retired_at else "?"
                self.stdout.write(f"{name}\n  retired {retired} (no longer declared)")
