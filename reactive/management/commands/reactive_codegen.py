"""``manage.py reactive_codegen --out <dir>``: TypeScript declarations for the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.codegen import generate
from reactive.functions.registry import registry


class Command(BaseCommand):
    help = "Write api.d.ts and api.js (typed function references and documents) into --out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="Directory to write into.")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a directory.")
        out.mkdir(parents=True, exist_ok=True)
        for name, text in generate(registry, apps.get_models()).items():
            (out / name).write_text(text)
            self.stdout.write(f"wrote {out / name}")
