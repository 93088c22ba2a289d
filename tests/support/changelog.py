"""Reading the change log in tests: the rows written after a mark, parsed like the Reactor
parses them, and a DSN for second connections ("other programs")."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from reactive.capture import log
from reactive.capture.matcher import Change


def last_change_id() -> int:
    """The id of the newest change row; rows after it are the ones written from now on."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM reactive_change")
        return int(cursor.fetchone()[0])


def changes_after(change_id: int, tables: Iterable[str] | None = None) -> list[Change]:
    """Committed change rows with ``id > change_id`` (in id order), optionally of some tables.

    Only meaningful when the writes since the mark were serial: ids come from a sequence, so
    concurrent writers can commit out of id order (the Reactor uses snapshots instead)."""
    sql = "SELECT tbl, op, old_row::text, new_row::text FROM reactive_change WHERE id > %s"
    params: list[object] = [change_id]
    if tables is not None:
        sql += " AND tbl = ANY(%s)"
        params.append(list(tables))
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY id", params)
        rows = cursor.fetchall()
    return [Change(t, op, log._row(old), log._row(new)) for t, op, old, new in rows]


def dsn() -> str:
    """A libpq DSN for the test database, for psycopg connections outside Django."""
    params = connection.get_connection_params()
    return (f"host={params['host']} port={params['port']} user={params['user']} "
            f"dbname={params['dbname']}")
