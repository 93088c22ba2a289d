"""The function log stream: every client-facing call's log lines, name, caller, duration and
outcome, kept in a bounded in-process buffer for ``GET /api/stream_function_logs`` (what
``npx convex logs`` polls) and written to the ``reactive.calls`` logger."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from reactive.conf import reactive_settings
from reactive.functions import logs
from reactive.functions.registry import registry

logger = logging.getLogger("reactive.calls")

UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action"}


class LogStream:
    """Entries in order, each with a strictly increasing cursor (microseconds since the
    epoch, exact as a JavaScript number)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, dict[str, Any]]] = deque()
        self._last = 0

    def record(self, record: logs.CallRecord) -> None:
        try:
            kind = registry.get(record.function, internal=True).kind
        except Exception:  # unknown functions never ran: nothing to show
            return
        identity = record.identity
        entry: dict[str, Any] = {
            "kind": "Completion", "udfType": UDF_TYPES[str(kind)],
            "identifier": record.function, "timestamp": record.started,
            "logLines": list(record.log_lines), "executionTime": record.duration,
            "identity": identity.user_id or ("admin" if identity.is_admin else None),
        }
        if not record.ok:
            entry["error"] = record.error
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            self._entries.append((self._last, entry))
            while len(self._entries) > reactive_settings().FUNCTION_LOGS_STREAM_SIZE:
                self._entries.popleft()
        _log(entry)

    def since(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """Entries after ``cursor`` and the cursor to pass next time."""
        with self._lock:
            entries = [(c, e) for c, e in self._entries if c > cursor]
            latest = self._last
        return [e for _, e in entries], max(cursor, latest)


def _log(entry: dict[str, Any]) -> None:
    logger.info(
        "function call function=%s kind=%s identity=%s ms=%.2f ok=%s lines=%d",
        entry["identifier"], entry["udfType"], entry["identity"],
        entry["executionTime"] * 1000, "error" not in entry, len(entry["logLines"]),
    )
    if logger.isEnabledFor(logging.DEBUG):
        for line in entry["logLines"]:
            logger.debug("function log function=%s line=%s", entry["identifier"], line)


stream = LogStream()


def install() -> None:
    """Start recording calls (the app does this at start-up)."""
    logs.add_listener(stream.record)
