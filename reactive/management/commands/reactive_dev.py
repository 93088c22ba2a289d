"""``manage.py reactive_dev``: the whole development stack in one command (what `make run` runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.embedded.stack import DevStack, StackConfig
from reactive.probe import database_problem
from reactive.project_checks import celery_module


class Command(BaseCommand):
    help = (
        "Start embedded PostgreSQL and Redis (unless DATABASE_URL/REDIS_URL are set), migrate, "
        "and serve the project with an ASGI server, a Celery worker and beat. Ctrl-C stops all."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--state-dir", type=Path, help="Default: <BASE_DIR>/.reactive")
        parser.add_argument("--no-celery", action="store_true", help="Skip worker and beat.")
        parser.add_argument("--verbose", action="store_true",
                            help="Celery at DEBUG, with the periodic ticks (quiet by default).")

    def handle(self, *args: Any, **options: Any) -> None:
        settings_module = os.environ["DJANGO_SETTINGS_MODULE"]
        package = settings_module.rsplit(".", 1)[0]
        base_dir = Path(getattr(settings, "BASE_DIR", Path.cwd()))
        celery_app, skipped = _celery(package, skip=options["no_celery"])
        asgi = getattr(settings, "ASGI_APPLICATION", None)
        if not asgi:
            raise CommandError(
                f"ASGI_APPLICATION is not set; add ASGI_APPLICATION = '{package}.asgi.application' "
                "to your settings (system check reactive.W050 explains the routing)."
            )
        _check_external_database()
        module, _, attribute = str(asgi).rpartition(".")
        config = StackConfig(
            state_dir=(options["state_dir"] or base_dir / ".reactive").absolute(),
            settings_module=settings_module,
            asgi_app=f"{module}:{attribute}",
            celery_app=celery_app,
            celery_skipped=skipped,
            verbose=options["verbose"],
            colour=sys.stdout.isatty() and "NO_COLOR" not in os.environ,
            host=options["host"],
            port=options["port"],
            project_dir=base_dir,
            banner=str(getattr(settings, "REACTIVE_DEV_BANNER", "")),
        )
        raise SystemExit(DevStack(config, say=self._say).run())

    def _say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()  # a pipe is block-buffered; show each line as it comes


def _check_external_database() -> None:
    """With ``DATABASE_URL`` set the stack starts no PostgreSQL: fail now, in seconds and with
    the fix, when that server does not answer (not after migrate's start-up and checks)."""
    if not os.environ.get("DATABASE_URL"):
        return
    problem = database_problem()
    if problem is not None:
        raise CommandError(
            f"{problem}\nDATABASE_URL is set, so reactive_dev uses that server and starts none: "
            "start it (or correct DATABASE_URL), or unset DATABASE_URL and reactive_dev starts "
            "an embedded PostgreSQL.")


def _celery(package: str, *, skip: bool) -> tuple[str | None, str]:
    """The Celery app to run (the project package), or None and why not."""
    if skip:
        return None, "--no-celery was given"
    if celery_module() is None:
        path = package.replace(".", "/")
        return None, f"there is no {path}/celery.py (see docs/guides/scheduling.md)"
    return package, ""
