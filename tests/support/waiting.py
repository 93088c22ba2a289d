"""Waiting in tests: poll a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout: float = 20, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy and return it; fail the test after
    ``timeout`` seconds, naming ``what`` it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {what or condition!r}")
        time.sleep(interval)


def database_quiet() -> bool:
    """No other session of the test database is running a statement or holding a transaction
    open: a server's trailing work is done, so the test's flush cannot deadlock with it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        )
        row = cursor.fetchone()
    connection.close()  # called from a worker thread: leave no connection behind
    return row is not None and row[0] == 0
