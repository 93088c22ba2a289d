"""Export positions: the integer cursors of streaming export, each naming a change-log
snapshot (``base``) and, part-way through a range of changes, its end (``upto``) and the last
change id already sent. Stored in ``reactive_exportposition`` (migration 0009)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest, CursorExpired

MAX_TS = 2**63 - 1


@dataclass(frozen=True)
class Position:
    ts: int
    base: str  # pg_snapshot text: every change visible in it has been delivered
    upto: str | None = None  # the end of the range being delivered, when part-way
    after_id: int = 0  # within that range, changes up to this id were delivered
    limits: dict[str, str | None] | None = None  # a listing's tables: largest key at base


def parse(raw: str | None, name: str) -> int:
    """A cursor or snapshot parameter as an integer; BadRequest when it is not one."""
    if raw is None or not raw.strip().lstrip("-").isdigit():
        raise BadRequest(
            f"'{name}' must be the integer a previous response returned, got {raw!r}.",
            code="BadCursor",
        )
    value = int(raw)
    if not 0 < value <= MAX_TS:
        raise BadRequest(f"'{name}' is out of range: {value}.", code="BadCursor")
    return value


def load(cursor: Any, ts: int) -> Position:
    """The position named ``ts``, checked against the log's pruning horizon.

    Raises CursorExpired when it is unknown (never issued, or pruned) or when the log was
    pruned past it, so some changes it has not delivered may be gone.
    """
    cursor.execute(
        "SELECT p.base, p.upto, p.after_id, p.limits::text, coalesce(s.int_value >= "
        "pg_snapshot_xmin(p.base::pg_snapshot)::text::bigint, false) "
        "FROM reactive_exportposition p LEFT JOIN reactive_state s ON s.name = 'pruned' "
        "WHERE p.ts = %s", [ts],
    )
    row = cursor.fetchone()
    retention = reactive_settings().CHANGE_LOG_RETENTION
    if row is None:
        raise CursorExpired(
            f"Cursor {ts} is unknown or older than the change log's retention "
            f"({retention:g} s, REACTIVE['CHANGE_LOG_RETENTION']): take a new snapshot with "
            "/api/list_snapshot.", str(ts),
        )
    base, upto, after_id, limits, pruned = row
    if pruned:
        raise CursorExpired(
            f"The change log was pruned past cursor {ts} (retention {retention:g} s, "
            "REACTIVE['CHANGE_LOG_RETENTION']): take a new snapshot with /api/list_snapshot.",
            str(ts),
        )
    return Position(ts, base, upto, int(after_id), None if limits is None else json.loads(limits))


def save(cursor: Any, base: str, upto: str | None = None, after_id: int = 0,
         limits: dict[str, str | None] | None = None) -> Position:
    """Store a new position and return it; drops positions older than the retention."""
    retention = reactive_settings().CHANGE_LOG_RETENTION
    cursor.execute(
        "DELETE FROM reactive_exportposition WHERE created_at < now() - %s * interval '1 second'",
        [retention],
    )
    while True:
        ts = clock.next()
        cursor.execute(
            "INSERT INTO reactive_exportposition (ts, base, upto, after_id, limits) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ts) DO NOTHING RETURNING ts",
            [ts, base, upto, after_id, None if limits is None else json.dumps(limits)],
        )
        if cursor.fetchone() is not None:  # another process may have taken this ts
            return Position(ts, base, upto, after_id, limits)
