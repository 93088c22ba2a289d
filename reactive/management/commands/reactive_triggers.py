"""``manage.py reactive_triggers install|check|remove``: manage the change-capture triggers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.capture import log, triggers


class Command(BaseCommand):
    help = "Install, check or remove the change-capture triggers on every tracked table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["install", "check", "remove"])

    def handle(self, *args: Any, **options: Any) -> None:
        if not log.log_exists():
            raise CommandError("The change log does not exist yet: run manage.py migrate first.")
        action = options["action"]
        if action == "install":
            tables = triggers.install()
            self.stdout.write(f"installed triggers on {len(tables)} tables")
        elif action == "remove":
            tables = triggers.remove()
            self.stdout.write(f"removed triggers from {len(tables)} tables")
        else:
            statuses = triggers.status()
            for item in statuses:
                self.stdout.write(f"{'ok     ' if item.installed else 'MISSING'}  {item.table}")
            missing = [s.table for s in statuses if not s.installed]
            if missing:
                raise CommandError(
                    f"{len(missing)} tracked tables lack triggers: run reactive_triggers install."
                )
