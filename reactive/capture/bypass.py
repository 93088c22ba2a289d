"""Statements sent on the raw psycopg connection (``connection.connection.cursor()``) while a
read set is recorded: they skip Django's execute wrappers, so the cursor classes of the raw
connection are swapped for ones that report them too."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

# True while Django's own cursor is executing: the wrapper has already seen the statement.
_through_django: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reactive_through_django", default=False)

Report = Callable[[Any, Any, bool], None]  # (sql, params or None, many)
_reporters: contextvars.ContextVar[tuple[Report, ...]] = contextvars.ContextVar(
    "reactive_bypass_reporters", default=())


@contextlib.contextmanager
def through_django() -> Iterator[None]:
    """Mark statements executed inside the block as already recorded."""
    token = _through_django.set(True)
    try:
        yield
    finally:
        _through_django.reset(token)


def _report(sql: Any, params: Any, many: bool) -> None:
    if not _through_django.get():
        for report in _reporters.get():
            report(sql, params, many)


@functools.cache
def _watched(base: type[Any]) -> type[Any]:
    """A subclass of the cursor class ``base`` whose statements are reported."""

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        _report(query, params, False)
        return base.execute(self, query, params, **kwargs)

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        _report(query, None, True)
        return base.executemany(self, query, params_seq, **kwargs)

    def stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        _report(query, params, False)
        return base.stream(self, query, params, **kwargs)

    def copy(self: Any, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        _report(None, None, False)  # COPY ... TO: whatever it reads, widen to everything
        return base.copy(self, statement, params, **kwargs)

    return type(f"Watched{base.__name__}", (base,), {
        "execute": execute, "executemany": executemany, "stream": stream, "copy": copy,
        "__module__": __name__,
    })


@contextlib.contextmanager
def watching(connection: Any, report: Report) -> Iterator[None]:
    """Call ``report`` for statements run on ``connection``'s raw psycopg connection, outside
    Django's cursor, inside the block. A driver without swappable cursor classes: no-op."""
    connection.ensure_connection()
    raw = connection.connection
    names = [n for n in ("cursor_factory", "server_cursor_factory")
             if isinstance(getattr(raw, n, None), type)]
    saved = {name: getattr(raw, name) for name in names}
    token = _reporters.set((*_reporters.get(), report))
    for name, base in saved.items():
        setattr(raw, name, _watched(base))
    try:
        yield
    finally:
        for name, base in saved.items():
            setattr(raw, name, base)
        _reporters.reset(token)
