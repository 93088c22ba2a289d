"""``manage.py reactive_insights --url URL [--window SECONDS] [--top N]``: the functions that
conflicted most and the slowest ones, from a server's metrics over a window."""

from __future__ import annotations

import urllib.error
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.conf import reactive_settings
from reactive.observability.insights import collect


class Command(BaseCommand):
    help = "Rank conflicting and slow functions over a window, from a server's /api/metrics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="The server, e.g. http://127.0.0.1:8000")
        parser.add_argument("--window", type=float, default=60.0,
                            help="Seconds to watch (0: totals since the server started).")
        parser.add_argument("--top", type=int, default=10)

    def handle(self, *args: Any, **options: Any) -> None:
        key = reactive_settings().ADMIN_KEY
        if not key:
            raise CommandError("REACTIVE['ADMIN_KEY'] is not set: the metrics need it.")
        if options["window"] < 0 or options["top"] < 1:
            raise CommandError("--window must be 0 or more and --top at least 1.")
        try:
            found = collect(options["url"], key, options["window"], options["top"])
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CommandError(f"Could not read {options['url']}/api/metrics: {exc} (is "
                               "REACTIVE['METRICS_ENABLED'] on there?)") from None
        span = f"the last {found.window:g} s" if found.window else "since the server started"
        self.stdout.write(f"Conflicts ({span}): function, SQLSTATE, retries, failures")
        for function, state, retries, failures in found.conflicts:
            self.stdout.write(f"  {function:<40} {state:<6} {retries:>8g} {failures:>8g}")
        if not found.conflicts:
            self.stdout.write("  none")
        self.stdout.write(f"Slowest functions ({span}): mean ms, p95 ms (bucket bound), calls, "
                          "errors")
        for s in found.slowest:
            p95 = f"{s.p95_seconds * 1000:g}" if s.p95_seconds is not None else "-"
            self.stdout.write(f"  {s.function:<40} {s.mean_seconds * 1000:>9.2f} {p95:>8} "
                              f"{s.calls:>8g} {s.errors:>6g}")
        if not found.slowest:
            self.stdout.write("  no calls")
