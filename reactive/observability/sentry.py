"""Sentry: tag events from failed function calls with the function's name.

Function errors reach Sentry through ``sentry_sdk``'s usual Django setup: the runtime logs
every crash at ERROR with its traceback (``function crashed function=... request_id=...``),
which Sentry's logging integration turns into an event. Pass ``before_send`` to
``sentry_sdk.init`` to tag those events ``function`` and ``request_id``, so they group and
filter by function. Arguments are never sent: they may hold personal data.
"""

from __future__ import annotations

import logging
from typing import Any

PHRASES = ("function crashed ", "function failed ")


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``sentry_sdk.init(before_send=...)``: add ``function`` (and ``request_id``) tags to
    events made from the runtime's failure records; other events pass unchanged."""
    record = hint.get("log_record")
    if not isinstance(record, logging.LogRecord):
        return event
    message = str(record.msg)
    if not message.startswith(PHRASES) or not isinstance(record.args, tuple) or not record.args:
        return event
    tags = event.setdefault("tags", {})
    tags["function"] = str(record.args[0])
    if message.startswith("function crashed ") and len(record.args) > 1:
        tags["request_id"] = str(record.args[1])
    return event
