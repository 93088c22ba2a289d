"""Progress bars (rich) for the export and import commands: one bar per table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from reactive.export.dump import Progress as Callback


@contextmanager
def bars(stream: IO[str] | Any, *, enabled: bool = True) -> Iterator[Callback | None]:
    """Yield a ``progress(table, done, expected)`` callback drawing bars on ``stream`` (None
    when disabled); ``expected`` 0 means unknown."""
    if not enabled:
        yield None
        return
    console = Console(file=stream)
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:

        def update(table: str, done: int, expected: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=expected or None)
            progress.update(tasks[table], completed=done)

        yield update
