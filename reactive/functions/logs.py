"""Function log capture: what a call logs (``logging`` below ``FUNCTION_LOGS_LOGGER`` and
``print``) becomes its ``logLines`` (``[LEVEL] message``, as Convex clients parse them), and
each finished call is offered to the registered call listeners (the log stream, metrics)."""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TextIO, TypeVar

from django.conf import settings

from reactive.conf import reactive_settings
from reactive.functions import current
from reactive.types import Identity

__all__ = ["CallRecord", "add_listener", "capture", "captured", "remove_listener", "reported"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Listener = Callable[["CallRecord"], None]

LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}
# Our own and Django's records describe the server, not the function: never sent to clients.
SERVER_LOGGERS = ("reactive", "django", "celery", "asyncio", "uvicorn", "daphne")


@dataclass
class LogBuffer:
    """The lines of one call, bounded like Convex's: a count and a length per line."""

    max_lines: int
    max_line_length: int
    lines: list[str] = field(default_factory=list)
    overflowed: bool = False
    _partial: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, level: str, message: str) -> None:
        with self._lock:
            if len(self.lines) >= self.max_lines:
                if not self.overflowed:
                    self.overflowed = True
                    self.lines.append(
                        f"[ERROR] Log overflow (maximum {self.max_lines}). "
                        "Remaining log lines omitted."
                    )
                return
            if len(message) > self.max_line_length:
                message = message[: self.max_line_length] + " (truncated)"
            self.lines.append(f"[{level}] {message}")

    def write(self, text: str) -> None:
        """Printed text: one ``[LOG]`` line per completed line."""
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self.add("LOG", line)

    def close(self) -> list[str]:
        if self._partial:
            self.add("LOG", self._partial)
            self._partial = ""
        return self.lines


@dataclass(frozen=True)
class CallRecord:
    """One finished client-facing call, as the log stream and metrics see it."""

    function: str
    identity: Identity
    started: float  # seconds since the epoch
    duration: float  # seconds
    ok: bool
    error: str | None
    log_lines: tuple[str, ...]
    rows_read: int = 0
    rows_written: int = 0
    kind: str | None = None  # set for calls the registry does not hold ("httpAction")


_current: contextvars.ContextVar[LogBuffer | None] = contextvars.ContextVar(
    "reactive_log_buffer", default=None
)
_listeners: list[Listener] = []
_install_lock = threading.Lock()
_installed: set[str] = set()


def add_listener(listener: Listener) -> None:
    """Call ``listener(record)`` after every client-facing call (it must not raise or block)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def enabled() -> bool:
    configured = reactive_settings().FUNCTION_LOGS
    return bool(settings.DEBUG) if configured is None else configured


@contextmanager
def capture() -> Iterator[LogBuffer | None]:
    """Collect the current call's log lines into a fresh buffer (None when disabled).

    The buffer lives in a context variable, so only code running in this call's context
    (its thread, or worker threads and tasks that copy the context, as asgiref does) writes
    to it: concurrent calls of other users never mix in.
    """
    if not enabled():
        yield None
        return
    conf = reactive_settings()
    _install(conf.FUNCTION_LOGS_LOGGER)
    buffer = LogBuffer(conf.FUNCTION_LOGS_MAX_LINES, conf.FUNCTION_LOGS_MAX_LINE_LENGTH)
    token = _current.set(buffer)
    try:
        yield buffer
    finally:
        _current.reset(token)
        buffer.close()


def captured(method: F) -> F:
    """Decorate a runtime method ``(self, call: Call)`` returning an ``Outcome`` (or an object
    holding one as ``outcome``): fill its ``log_lines`` and report the call to the listeners.
    Works for sync and ``async`` methods."""

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Identity, Any]:
        request = args[1] if len(args) > 1 else kwargs["call"]  # the runtime's Call
        ref = request.function
        name = str(getattr(ref, "name", ref))[:200]
        return request.identity or Identity(), current.running(name, request.args)

    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            identity, running = begin(args, kwargs)
            started, clock = time.time(), time.perf_counter()
            with capture() as buffer, running as state:
                result = await method(*args, **kwargs)
            return _finish(result, buffer, state, identity, started, clock)

        return acall  # type: ignore[return-value]

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        identity, running = begin(args, kwargs)
        started, clock = time.time(), time.perf_counter()
        with capture() as buffer, running as state:
            result = method(*args, **kwargs)
        return _finish(result, buffer, state, identity, started, clock)

    return call  # type: ignore[return-value]


def _finish(
    result: Any, buffer: LogBuffer | None, state: current.RunningCall, identity: Identity,
    started: float, clock: float,
) -> Any:
    nested = hasattr(result, "outcome")  # an Evaluation holds the Outcome
    outcome = result.outcome if nested else result
    lines = list(buffer.lines) if buffer is not None else []
    if lines:
        outcome = replace(outcome, log_lines=lines)
        result = replace(result, outcome=outcome) if nested else outcome
    _report(CallRecord(state.function, identity, started, time.perf_counter() - clock,
                       outcome.error is None, outcome.error, tuple(lines),
                       state.rows_read, state.rows_written))
    return result


@contextmanager
def reported(
    name: str, identity: Identity, args: Any = None, kind: str | None = None
) -> Iterator[None]:
    """Capture the lines of a call made outside the runtime's edges (a scheduled job, an HTTP
    action) and report it to the listeners when the block ends; an exception leaving the block
    makes it a failed call (and propagates). No client waits for these lines: only listeners
    see them. ``kind`` names calls the function registry does not hold."""
    started, clock = time.time(), time.perf_counter()
    error: str | None = None
    with capture() as buffer, current.running(name[:200], args or {}) as state:
        try:
            yield
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            lines = tuple(buffer.close()) if buffer is not None else ()
            _report(CallRecord(name[:200], identity, started, time.perf_counter() - clock,
                               error is None, error, lines, state.rows_read,
                               state.rows_written, kind))


def _report(record: CallRecord) -> None:
    for listener in list(_listeners):
        try:
            listener(record)
        except Exception:  # a broken listener must not fail the call
            logger.exception("call listener failed listener=%r", listener)


class _CaptureHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = _current.get()
        if buffer is None or record.name.split(".", 1)[0] in SERVER_LOGGERS:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the function
            message = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        buffer.add(LEVELS.get(record.levelno, "ERROR"), message)


class _PrintTee:
    """``sys.stdout`` while capture is on: text printed inside a call goes to its buffer,
    anything else to the real stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        buffer = _current.get()
        if buffer is None:
            return self._stream.write(text)
        buffer.write(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _install(logger_name: str) -> None:
    if logger_name in _installed and isinstance(sys.stdout, _PrintTee):
        return
    with _install_lock:
        if logger_name not in _installed:
            logging.getLogger(logger_name or None).addHandler(_CaptureHandler())
            _installed.add(logger_name)
        if not isinstance(sys.stdout, _PrintTee):
            sys.stdout = _PrintTee(sys.stdout)
