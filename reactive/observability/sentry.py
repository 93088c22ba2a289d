"""Sentry: tag events raised during a function call with the function's name and the shape of
its arguments (types and keys, never values).

Function errors reach Sentry through ``sentry_sdk``'s usual Django setup: the runtime logs
every crash at ERROR with its traceback (``function crashed function=... request_id=...``),
which Sentry's logging integration turns into an event. Pass ``before_send`` to
``sentry_sdk.init``: any event captured while a call runs (that record, or your own
``logger.error``/``capture_exception`` inside the function) gets the tags ``function`` and
``args_shape`` (and ``request_id`` for crashes), and the full shape in the ``function``
context. Argument values are never sent: they may hold personal data, so the hook also drops
what Sentry would send of them by itself (frame locals, the request body) from those events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from reactive.functions.current import current

PHRASES = ("function crashed ", "function failed ")
TAG_LIMIT = 200  # Sentry's maximum length of a tag value
MAX_DEPTH = 5
MAX_KEYS = 20


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``sentry_sdk.init(before_send=...)``: add ``function``, ``args_shape`` and
    ``request_id`` tags to events made during a function call; other events pass unchanged."""
    tags = event.setdefault("tags", {})
    running = current()
    if running is not None:
        described = shape(running.args)
        tags["function"] = running.function
        tags["args_shape"] = _truncate(render(described))
        event.setdefault("contexts", {})["function"] = {"name": running.function,
                                                        "args_shape": described}
        _drop_values(event)
    record = hint.get("log_record")
    if isinstance(record, logging.LogRecord) and str(record.msg).startswith(PHRASES) and (
            isinstance(record.args, tuple) and record.args):
        tags["function"] = str(record.args[0])
        if str(record.msg).startswith("function crashed ") and len(record.args) > 1:
            tags["request_id"] = str(record.args[1])
    if not tags:
        del event["tags"]
    return event


def _drop_values(event: dict[str, Any]) -> None:
    """Where Sentry would send argument values on its own: the frames' local variables (the
    function's parameters among them) and the HTTP request's body (the call's JSON)."""
    for exception in (event.get("exception") or {}).get("values") or ():
        for frame in (exception.get("stacktrace") or {}).get("frames") or ():
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or ():
        for frame in (thread.get("stacktrace") or {}).get("frames") or ():
            frame.pop("vars", None)
    request = event.get("request")
    if isinstance(request, dict) and "data" in request:
        request["data"] = "[removed: a function call's arguments]"


def shape(value: Any, depth: int = 0) -> Any:
    """What ``value`` looks like without what it holds: objects become ``{key: shape}``,
    arrays the list of their distinct element shapes, anything else its type's name."""
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        keys = list(value)
        described = {str(k): shape(value[k], depth + 1) for k in keys[:MAX_KEYS]}
        if len(keys) > MAX_KEYS:
            described["..."] = f"{len(keys) - MAX_KEYS} more keys"
        return described
    if isinstance(value, list | tuple):
        kinds: list[Any] = []
        for item in value:
            described = shape(item, depth + 1)
            if described not in kinds:
                kinds.append(described)
            if len(kinds) >= 3:
                break
        return kinds
    return "null" if value is None else type(value).__name__


def render(described: Any) -> str:
    """A shape as compact text: ``{channel: str, tags: [str]}``."""
    if isinstance(described, dict):
        return "{" + ", ".join(f"{k}: {render(v)}" for k, v in described.items()) + "}"
    if isinstance(described, list):
        return "[" + " | ".join(render(v) for v in described) + "]"
    return str(described)


def _truncate(text: str) -> str:
    return text if len(text) <= TAG_LIMIT else text[: TAG_LIMIT - 3] + "..."
