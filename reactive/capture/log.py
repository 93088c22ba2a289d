"""The change log and its bookkeeping rows: reading what committed between two snapshots,
pruning old rows, and the ``reactive_state`` rows (prune horizon, clock high-water mark)."""

from __future__ import annotations

import decimal
import json
from collections.abc import Collection
from typing import Any

from django.db import connections

from reactive.capture.matcher import Change
from reactive.conf import reactive_settings


def log_exists(using: str = "default") -> bool:
    """Whether the change log's table exists (migration 0002 has run)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass('reactive_change') IS NOT NULL")
        row = cursor.fetchone()
    return bool(row and row[0])


# The current snapshot, the database's now(), and whether the log was pruned past the previous
# snapshot. Exact: a pruned row at or above the previous snapshot's xmin may be one never read.
_BEGIN = ("SELECT pg_current_snapshot()::text, now(), (SELECT coalesce("
          "int_value >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint, false) "
          "FROM reactive_state WHERE name = 'pruned')")


def changes_since(cursor: Any, previous_snapshot: str,
                  tables: Collection[str] | None = None) -> list[Change]:
    """Rows committed after ``previous_snapshot`` and visible to the current transaction;
    only those of ``tables`` when given (``None``: every table).

    Call inside the REPEATABLE READ transaction whose snapshot is the new one: visibility of
    ``txid`` in the old snapshot, not commit time, decides (docs/internals/reactor.md).
    """
    if tables is not None and not tables:
        return []
    sql, params = _changes(previous_snapshot, tables)
    cursor.execute(sql, params)
    return _read_changes(cursor)


def opening(previous_snapshot: str | None,
            tables: Collection[str] | None) -> tuple[str, list[Any], bool]:
    """The snapshot statement, then ``changes_since``'s when there is a previous snapshot and
    something to read, and whether it is there: for a round to send with its ``BEGIN``
    (``functions.snapshots.run_snapshot``) and to read with ``opened``.

    The log is read before the round knows whether it was pruned past ``previous_snapshot``;
    if it was, the round throws those rows away and re-runs everything.
    """
    params: list[Any] = [previous_snapshot]
    if previous_snapshot is None or (tables is not None and not tables):
        return _BEGIN, params, False
    sql, more = _changes(previous_snapshot, tables)
    return f"{_BEGIN}; {sql}", params + more, True


def opened(cursor: Any, with_log: bool) -> tuple[str, Any, bool, list[Change]]:
    """What ``opening``'s statements returned, from the cursor on the first one's result; the
    cursor is left on the result of the statement after them."""
    snapshot, now, pruned = _began(cursor)
    cursor.nextset()
    changes: list[Change] = []
    if with_log:
        changes = _read_changes(cursor)
        cursor.nextset()
    return snapshot, now, pruned, changes


def _began(cursor: Any) -> tuple[str, Any, bool]:
    snapshot, now, pruned = cursor.fetchone()
    return str(snapshot), now, bool(pruned)


def _changes(previous_snapshot: str, tables: Collection[str] | None) -> tuple[str, list[Any]]:
    only = "" if tables is None else "AND tbl = ANY(%s) "
    params: list[Any] = [previous_snapshot, previous_snapshot]
    if tables is not None:
        params.append(sorted(tables))
    return ("SELECT tbl, op, old_row::text, new_row::text FROM reactive_change "
            "WHERE txid >= pg_snapshot_xmin(%s::pg_snapshot) "
            f"AND NOT pg_visible_in_snapshot(txid, %s::pg_snapshot) {only}ORDER BY id", params)


def _read_changes(cursor: Any) -> list[Change]:
    return [Change(t, op, _row(old), _row(new)) for t, op, old, new in cursor.fetchall()]


def prune(cursor: Any) -> int:
    """Delete log rows older than ``CHANGE_LOG_RETENTION`` and record the horizon.

    ``reactive_state('pruned')`` keeps the newest pruned row's ``created_at`` (``time_value``)
    and its ``txid`` (``int_value``); both only move forward. Reactors that started before the
    horizon re-run everything instead of reading a log with holes. The txid is the exact test:
    a Reactor whose previous snapshot has ``xmin`` above it saw every pruned row, while the time
    can miss a transaction that stayed open longer than the retention (``created_at`` is its
    start, not its commit). One pruner at a time: the advisory lock is taken inside the same
    statement, so it also holds when ``cursor`` is in autocommit. Rows a reaction still needs
    stay (``REACTION_FLOOR``).
    """
    conf = reactive_settings()
    cursor.execute(
        "WITH held AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(hashtext('reactive_prune')) "
        f"AS ok), {REACTION_FLOOR}, "
        "gone AS (DELETE FROM reactive_change WHERE (SELECT ok FROM held) "
        "AND created_at < now() - %s * interval '1 second' "
        "AND txid < coalesce((SELECT xmin FROM floor), pg_current_xact_id()) "
        "RETURNING created_at, txid) "
        "UPDATE reactive_state SET time_value = GREATEST(time_value, "
        "(SELECT max(created_at) FROM gone)), int_value = GREATEST(int_value, "
        "(SELECT max(txid::text::bigint) FROM gone)) WHERE name = 'pruned' "
        "AND EXISTS (SELECT 1 FROM gone) RETURNING (SELECT count(*) FROM gone)",
        [conf.REACTION_MAX_LAG, conf.CHANGE_LOG_RETENTION],
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


# The prune floor of server-side reactions (reactive/reactions/): the oldest cursor of a
# reaction that is not fallen behind and moved within REACTION_MAX_LAG. Rows it still needs
# stay; a reaction past the limit stops holding the log and marks itself fallen behind.
REACTION_FLOOR = (
    "floor AS (SELECT min(pg_snapshot_xmin(snapshot::pg_snapshot)) AS xmin "
    "FROM reactive_reaction WHERE state <> 'fallen_behind' "
    "AND cursor_at > now() - %s * interval '1 second')"
)


def clock_reservation(cursor: Any) -> int:
    """The clock high-water mark a previous process reserved (0 if none)."""
    cursor.execute("SELECT int_value FROM reactive_state WHERE name = 'clock'")
    row = cursor.fetchone()
    return int(row[0]) if row and row[0] else 0


def reserve_clock(cursor: Any, reserved: int) -> None:
    """Raise the persisted clock high-water mark to ``reserved`` (it never goes down)."""
    cursor.execute("UPDATE reactive_state SET int_value = GREATEST(int_value, %s) "
                   "WHERE name = 'clock'", [reserved])


def _row(text: str | None) -> dict[str, Any] | None:
    # Decimal keeps numeric columns exact for equality with ORM parameters.
    return None if text is None else json.loads(text, parse_float=decimal.Decimal)
