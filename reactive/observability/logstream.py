"""The function log stream: every finished call (lines, name, caller, duration, outcome) written
to the shared ``reactive_functionlog`` table for ``GET /api/stream_function_logs`` (what
``npx convex logs`` polls), whichever process ran it, and to the ``reactive.calls`` logger."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from django.db import connections, transaction

from reactive.conf import reactive_settings
from reactive.functions import logs
from reactive.functions.registry import registry

logger = logging.getLogger("reactive.calls")
problems = logging.getLogger(__name__)

UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action",
             "httpAction": "HttpAction"}
FLUSH_INTERVAL = 0.2  # seconds a batch gathers before it is written
READ_LIMIT = 1000  # entries per poll (the newest ones for a first poll)
# Writers hold it while they insert: ids are taken and committed one writer at a time, so a
# reader that saw id N will never later see a smaller id commit (see docs/internals).
WRITE_LOCK = 0x72656163746C6F67  # "reactlog"


class LogStream:
    """Calls queue here and a daemon thread of this process writes them in batches.

    ``record`` never touches the database (it runs inside calls and Reactor rounds); the
    flusher appends a batch in one transaction under ``WRITE_LOCK`` and drops rows beyond
    ``FUNCTION_LOGS_STREAM_SIZE``. Readers page by id, which is the commit order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.dropped = 0  # entries a full queue or a failed write lost

    def record(self, record: logs.CallRecord) -> None:
        kind = record.kind or _kind(record.function)
        if kind is None:  # unknown functions never ran: nothing to show
            return
        identity = record.identity
        entry: dict[str, Any] = {
            "kind": "Completion", "udfType": UDF_TYPES[str(kind)],
            "identifier": record.function, "timestamp": record.started,
            "logLines": [_storable(line) for line in record.log_lines],
            "executionTime": record.duration,
            "identity": identity.user_id or ("admin" if identity.is_admin else None),
        }
        if not record.ok:
            entry["error"] = _storable(record.error or "")
        _log(entry)
        size = reactive_settings().FUNCTION_LOGS_STREAM_SIZE
        if size == 0:
            return
        with self._lock:
            self._queue.append(entry)
            while len(self._queue) > size:  # the database is slower than the calls
                self._queue.popleft()
                self.dropped += 1
        self._ensure_flusher()
        self._wake.set()

    def flush(self) -> int:
        """Write the queued entries now (in the caller's thread); return how many."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        if not batch:
            return 0
        try:
            _write(batch, reactive_settings().FUNCTION_LOGS_STREAM_SIZE)
        except Exception as exc:  # the stream is best effort: never fail or block calls
            with self._lock:
                self.dropped += len(batch)
            problems.warning("function log flush failed entries=%d error=%s", len(batch), exc)
            connections["default"].close()
            return 0
        return len(batch)

    def since(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """Entries after ``cursor`` (at most ``READ_LIMIT``; the newest ones when ``cursor``
        is 0) and the cursor to pass next time."""
        from reactive.models import FunctionLog

        rows = FunctionLog.objects.values_list("id", "entry")
        if cursor <= 0:
            page = list(rows.order_by("-id")[:READ_LIMIT])[::-1]
        else:
            page = list(rows.filter(id__gt=cursor).order_by("id")[:READ_LIMIT])
        return [entry for _, entry in page], (page[-1][0] if page else max(cursor, 0))

    def _ensure_flusher(self) -> None:
        # Started lazily, and again in a forked child (Celery prefork, gunicorn --preload).
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="reactive-log-stream",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(FLUSH_INTERVAL)  # gather a batch
            while self.flush():
                time.sleep(FLUSH_INTERVAL)
            # Idle: hold no connection (nor keep a test database from being dropped).
            connections["default"].close()


# One statement per batch: Postgres unpacks the JSON array (building a model instance and
# encoding each entry separately cost more than the rest of a fast call).
INSERT = """
INSERT INTO reactive_functionlog (at, entry)
SELECT to_timestamp((value->>'timestamp')::float8), value
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS batch(value, n) ORDER BY n
RETURNING id
"""


def _write(batch: list[dict[str, Any]], keep: int) -> None:
    with transaction.atomic(using="default"), connections["default"].cursor() as db:
        db.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
        db.execute(INSERT, [json.dumps(batch, default=str)])
        newest = max(row[0] for row in db.fetchall())
        db.execute("DELETE FROM reactive_functionlog WHERE id <= %s", [newest - keep])


def _kind(function: str) -> str | None:
    try:
        return str(registry.get(function, internal=True).kind)
    except Exception:
        return None


def _storable(text: str) -> str:
    """What jsonb accepts: no NUL character, no lone surrogate (one call's odd output must not
    make its whole batch fail)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\x00")


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
    """Start recording calls (the app does this at start-up); what is queued at exit is
    written then (a Celery worker's last jobs)."""
    logs.add_listener(stream.record)
    atexit.register(stream.flush)
