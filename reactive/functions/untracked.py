"""The untracked-read policy: a live query that read tables no capture trigger watches is
refused (``UntrackedReadError``) or, where opted in, run with one WARNING per function and
table; each verdict is recorded for ``reactive_functions --check``."""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

from reactive.capture.listener import conninfo
from reactive.capture.resolve import Resolution
from reactive.conf import reactive_settings
from reactive.exceptions import UntrackedReadError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
_seen: set[tuple[str, str, str]] = set()  # (function, table, mode) reported by this process
_lock = threading.Lock()


def mode(definition: Any) -> str:
    """"refuse" or "warn": the function's ``untracked_reads=``, else the setting."""
    chosen = getattr(definition, "untracked_reads", None)
    return str(chosen or reactive_settings().UNTRACKED_READS)


def enforce(function: str, definition: Any, resolution: Resolution) -> None:
    """Raise ``UntrackedReadError`` for untracked reads, or warn once (per process) if allowed."""
    if not resolution.untracked:
        return
    verdict = mode(definition)
    tables = sorted(resolution.untracked)
    with _lock:
        fresh = [t for t in tables if (function, t, verdict) not in _seen]
        _seen.update((function, t, verdict) for t in fresh)
    if fresh:
        if verdict == "warn":
            logger.warning("live query reads untracked tables; its result can go stale "
                           "function=%s tables=%s", function, ",".join(fresh))
        _record(function, fresh, verdict)
    if verdict != "warn":
        raise UntrackedReadError(function, tables)


def _record(function: str, tables: list[str], verdict: str) -> None:
    # Its own short connection: the caller's transaction is read-only and may roll back.
    try:
        with psycopg.connect(conninfo(DEFAULT_DB_ALIAS), autocommit=True,
                             connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute(
                "INSERT INTO reactive_untrackedread (function, tbl, mode) "
                "SELECT %s, t, %s FROM unnest(%s::text[]) AS t ON CONFLICT (function, tbl) "
                "DO UPDATE SET mode = EXCLUDED.mode, seen_at = now()",
                [function, verdict, tables])
    except Exception as exc:  # the verdict itself stands; only the record is lost
        logger.warning("untracked read not recorded function=%s error=%s", function, exc)


def forget() -> None:
    """Warn and record again from now on (tests; after clearing reactive_untrackedread)."""
    with _lock:
        _seen.clear()


def recorded() -> list[tuple[str, str, str]]:
    """(function, table, mode) of every untracked read seen by any process, sorted."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT function, tbl, mode FROM reactive_untrackedread "
                       "ORDER BY function, tbl")
        return [(str(f), str(t), str(m)) for f, t, m in cursor.fetchall()]
