"""``manage.py reactive_triggers install|check|remove``: manage the change-capture triggers;
``reactions``, ``retry NAME``, ``skip NAME``: the lag and state of ``@on_change`` reactions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.capture import log, triggers
from reactive.exceptions import ReactionError
from reactive.reactions import control


class Command(BaseCommand):
    help = ("Install, check or remove the change-capture triggers on every tracked table; show "
            "reactions (lag, state), retry a parked one or skip its failed change.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action",
                            choices=["install", "check", "remove", "reactions", "retry", "skip"])
        parser.add_argument("name", nargs="?", help="the reaction (retry, skip)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not log.log_exists():
            raise CommandError("The change log does not exist yet: run manage.py migrate first.")
        action, name = options["action"], options["name"]
        if action in ("retry", "skip"):
            if not name:
                raise CommandError(f"reactive_triggers {action} needs a reaction name; see "
                                   "reactive_triggers reactions.")
            try:
                if action == "retry":
                    control.retry(name)
                    self.stdout.write(f"{name}: will retry now")
                else:
                    self.stdout.write(f"{name}: skipped {control.skip(name)}")
            except ReactionError as exc:
                raise CommandError(str(exc)) from exc
        elif action == "reactions":
            self._reactions()
        elif action == "install":
            tables = triggers.install()
            self.stdout.write(f"installed triggers on {len(tables)} tables")
        elif action == "remove":
            tables = triggers.remove()
            self.stdout.write(f"removed triggers from {len(tables)} tables")
        else:
            self._check()

    def _check(self) -> None:
        statuses = triggers.status()
        for item in statuses:
            self.stdout.write(f"{'ok     ' if item.installed else 'MISSING'}  {item.table}")
        missing = [s.table for s in statuses if not s.installed]
        if missing:
            raise CommandError(
                f"{len(missing)} tracked tables lack triggers: run reactive_triggers install."
            )

    def _reactions(self) -> None:
        rows = control.status()
        if not rows:
            self.stdout.write("no reactions")
        for row in rows:
            note = "" if row.registered else "  (no longer in the code)"
            self.stdout.write(
                f"{row.name}  state={row.state} pending={row.pending} "
                f"lag={row.lag.total_seconds():.1f}s handled={row.handled} "
                f"attempts={row.attempts}{note}"
            )
            if row.error:
                self.stdout.write(f"    last error: {row.error}")
