"""What ``manage.py reactive_migrations`` does: start a migration and follow it with a live
progress bar (rich), describe their state, cancel one, list them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from reactive.datamigrations import runner, tasks
from reactive.datamigrations.definitions import registry
from reactive.models import DataMigration, DataMigrationState

POLL = 0.25


def run(name: str, *, dry_run: bool, batch_size: int | None, inline: bool, out: Any) -> str:
    """Start (or resume) ``name`` and follow it until it ends; return its final state.

    On Celery (the default) Ctrl-C stops following and leaves the migration running.
    ``inline`` runs the batches in this process.
    """
    row = runner.start(name, dry_run=dry_run, batch_size=batch_size)
    console = Console(file=getattr(out, "_out", out), force_terminal=None)
    if row.state == DataMigrationState.DONE:
        console.print(f"{name}: already done ({row.done} rows)")
        return str(row.state)
    if not inline:
        tasks.send(name)
    with _progress(console) as progress:
        bar = progress.add_task(name, total=row.total or None, completed=row.done)

        def show(current: DataMigration) -> None:
            progress.update(bar, completed=current.done + current.skipped,
                            total=max(current.total, current.done + current.skipped) or None)

        try:
            state = runner.run(name, on_batch=show) if inline else _follow(name, show)
        except KeyboardInterrupt:
            console.print(f"{name}: still running on the workers; follow it with "
                          f"'reactive_migrations status {name}'")
            return DataMigrationState.RUNNING
    for line in status_lines(name):
        console.print(line, highlight=False)
    return state


def _follow(name: str, show: Any) -> str:
    while True:
        current = DataMigration.objects.get(name=name)
        show(current)
        if current.state not in runner.ACTIVE:
            return str(current.state)
        time.sleep(POLL)  # polling a row for display, not synchronisation


def cancel(name: str) -> None:
    runner.cancel(name)


def status_lines(name: str | None = None) -> Iterator[str]:
    """One block per migration: state, cursor, counts, last error."""
    rows = DataMigration.objects.order_by("name")
    if name is not None:
        registry.get(name)
        rows = rows.filter(name=name)
    found = False
    for row in rows:
        found = True
        mode = " (dry run)" if row.dry_run else ""
        yield (f"{row.name}: {row.state}{mode} phase={row.phase} cursor={row.cursor} "
               f"done={row.done}/{row.total} skipped={row.skipped} batches={row.batches}")
        if row.dry_run and row.would_change:
            changes = ", ".join(f"{t}={n}" for t, n in sorted(row.would_change.items()))
            yield f"    would change: {changes}"
        if row.failed_pk or row.error:
            last = row.error.strip().splitlines()[-1] if row.error.strip() else ""
            yield f"    failed at pk={row.failed_pk or '-'}: {last}"
    if not found:
        yield f"{name}: never run" if name else "no data migration has run"


def list_lines() -> Iterator[str]:
    for definition in registry:
        yield (f"{definition.name}  model={definition.model._meta.label} "
               f"batch_size={definition.batch_size}")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        _Rate(), TimeRemainingColumn(), console=console, transient=False,
    )


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s")
