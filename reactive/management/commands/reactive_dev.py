"""``manage.py reactive_dev``: the whole development stack in one command (what `make run` runs)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from reactive.embedded.stack import DevStack, StackConfig


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

    def handle(self, *args: Any, **options: Any) -> None:
        settings_module = os.environ["DJANGO_SETTINGS_MODULE"]
        package = settings_module.rsplit(".", 1)[0]
        base_dir = Path(getattr(settings, "BASE_DIR", Path.cwd()))
        celery_app = None
        if not options["no_celery"] and importlib.util.find_spec(f"{package}.celery"):
            celery_app = package
        config = StackConfig(
            state_dir=(options["state_dir"] or base_dir / ".reactive").absolute(),
            settings_module=settings_module,
            asgi_app=str(settings.ASGI_APPLICATION).replace(".application", ":application"),
            celery_app=celery_app,
            host=options["host"],
            port=options["port"],
            project_dir=base_dir,
            banner=str(getattr(settings, "REACTIVE_DEV_BANNER", "")),
        )
        raise SystemExit(DevStack(config, say=self.stdout.write).run())
