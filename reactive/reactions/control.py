"""What operators do with reactions: see their lag and state, retry a parked one, skip what
blocks it. Used by ``manage.py reactive_triggers`` and the admin."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from reactive.exceptions import ReactionError
from reactive.models import Reaction, ReactionState
from reactive.reactions.definitions import registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReactionStatus:
    name: str
    state: str
    pending: int  # matching or not: log rows of the table after the cursor
    lag: datetime.timedelta  # since the cursor's snapshot was taken
    handled: int
    attempts: int
    error: str
    registered: bool


def status() -> list[ReactionStatus]:
    """Every reaction with a cursor row, registered or left over from removed code."""
    out = []
    for row in Reaction.objects.order_by("name"):
        reaction = registry._reactions.get(row.name)
        out.append(ReactionStatus(
            row.name, row.state, _pending(row, reaction.model._meta.db_table if reaction else ""),
            timezone.now() - row.cursor_at, row.handled, row.attempts,
            row.error.strip().splitlines()[-1] if row.error.strip() else "", reaction is not None,
        ))
    return out


def retry(name: str) -> None:
    """Make a failed reaction try its change again now."""
    with transaction.atomic():
        row = _row(name)
        if row.state == ReactionState.FALLEN_BEHIND:
            raise ReactionError(
                f"Reaction {name!r} fell behind the change log; changes it needed are gone. "
                f"Use 'reactive_triggers skip {name}' to resume from the present."
            )
        row.state, row.attempts, row.next_attempt_at = ReactionState.ACTIVE, 0, None
        row.save()
    logger.warning("reaction retry requested reaction=%s", name)


def skip(name: str) -> str:
    """Skip what blocks a reaction: a failed one moves past its failed change (or batch); a
    fallen-behind one jumps to the present. Returns what was skipped."""
    with transaction.atomic():
        row = _row(name)
        if row.state == ReactionState.FAILED and row.failed_change:
            last = row.failed_change
            if not row.window_end:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_current_snapshot()::text, now()")
                    row.window_end, row.window_at = cursor.fetchone()
            row.position_txid, row.position_id = last["last_txid"], last["last_log_id"]
            what = f"{last['count']} change(s) up to log id {last['last_log_id']}"
        elif row.state == ReactionState.FALLEN_BEHIND:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_current_snapshot()::text, now()")
                row.snapshot, row.cursor_at = cursor.fetchone()
            row.window_end, row.window_at, row.position_txid, row.position_id = "", None, 0, 0
            row.own_txids = []
            what = "every change up to now"
        else:
            raise ReactionError(f"Reaction {name!r} is {row.state}; only a failed or fallen "
                                "behind reaction can be skipped.")
        row.state, row.attempts, row.next_attempt_at = ReactionState.ACTIVE, 0, None
        row.error, row.failed_change = "", None
        row.save()
    logger.warning("reaction skipped reaction=%s skipped=%s", name, what)
    return what


def _row(name: str) -> Reaction:
    row = Reaction.objects.select_for_update().filter(name=name).first()
    if row is None:
        known = ", ".join(Reaction.objects.values_list("name", flat=True)) or "none"
        raise ReactionError(f"No reaction is named {name!r} (known: {known}).")
    return row


def _pending(row: Reaction, table: str) -> int:
    if not table:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM reactive_change c WHERE c.tbl = %s "
            "AND c.txid >= pg_snapshot_xmin(%s::pg_snapshot) "
            "AND NOT pg_visible_in_snapshot(c.txid, %s::pg_snapshot) "
            "AND NOT (c.txid::text::bigint = ANY(%s))",
            [table, row.snapshot, row.snapshot, list(row.own_txids)],
        )
        found = cursor.fetchone()
    return int(found[0]) if found else 0
