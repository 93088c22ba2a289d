"""The client-facing call this context is running (function name and decoded arguments), for
error reporters such as the Sentry hook; never sent anywhere by itself."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunningCall:
    function: str
    args: Mapping[str, Any]


_running: contextvars.ContextVar[RunningCall | None] = contextvars.ContextVar(
    "reactive_running_call", default=None
)


@contextmanager
def running(function: str, args: Mapping[str, Any]) -> Iterator[None]:
    """Mark the rest of this context as running ``function`` with ``args``."""
    token = _running.set(RunningCall(function, args))
    try:
        yield
    finally:
        _running.reset(token)


def current() -> RunningCall | None:
    """The call this context runs, if any (threads and tasks that copy the context see it)."""
    return _running.get()
