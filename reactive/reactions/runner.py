"""Running a reaction: one SERIALIZABLE transaction per step handles the next matching
change (or batch) and advances the cursor with it; failures are retried with backoff, then
parked.

Exactly once: the handler's writes and the cursor move commit together or not at all. A
worker killed mid-handler leaves the cursor where it was, so the change is handled again by
the next step. Steps of one reaction never run concurrently: each takes the reaction's row
with ``FOR UPDATE SKIP LOCKED`` and a second worker steps aside (or, when the first committed
after its snapshot, gets a serialization failure and retries against the new cursor).
"""

from __future__ import annotations

import datetime
import enum
import logging
import traceback
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.functions.context import MutationCtx
from reactive.functions.runtime import runtime
from reactive.functions.transaction import run_serializable
from reactive.models import Reaction, ReactionState
from reactive.reactions.definitions import OnChange, registry
from reactive.reactions.log import LoggedChange, load_changes, read_window
from reactive.types import ANONYMOUS

logger = logging.getLogger(__name__)


class Step(enum.Enum):
    HANDLED = "handled"  # changes handled (or skipped as not matching): step again
    IDLE = "idle"  # the cursor reached the present
    BUSY = "busy"  # another worker holds the reaction
    WAITING = "waiting"  # parked, or backing off after a failure
    FAILED = "failed"  # the handler raised; recorded


def ensure_rows(reactions: Iterable[OnChange[Any]] | None = None) -> None:
    """Create the cursor row of each reaction that has none, starting at the present: a new
    reaction sees changes committed after it was first deployed."""
    names = [r.name for r in (reactions if reactions is not None else registry)]
    if not names:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reactive_reaction (name, state, snapshot, cursor_at, window_end, "
            "position_txid, position_id, own_txids, handled, attempts, error, updated_at) "
            "SELECT n, 'active', pg_current_snapshot()::text, now(), '', 0, 0, '[]', 0, 0, '', "
            "now() FROM unnest(%s::text[]) n ON CONFLICT (name) DO NOTHING",
            [names],
        )


def drain(name: str, *, max_steps: int = 10_000) -> Step:
    """Step reaction ``name`` until it is idle, busy, waiting or failed; return why it stopped."""
    reaction = registry.get(name)
    ensure_rows([reaction])
    for _ in range(max_steps):
        outcome = step(reaction)
        if outcome is not Step.HANDLED:
            return outcome
    return Step.HANDLED


def step(reaction: OnChange[Any]) -> Step:
    """Handle the next matching change (or batch) of ``reaction`` in one transaction."""
    current = _Attempt()

    def attempt(_: int) -> Step:
        current.changes.clear()
        return _attempt(reaction, current)

    try:
        return run_serializable(attempt, function=f"on_change {reaction.name}")
    except Exception as exc:
        _record_failure(reaction, current, exc)
        return Step.FAILED


class _Attempt:
    """What the last attempt was handling, for the failure record: its changes and window
    (kept, so that ``skip`` moves past exactly those changes)."""

    def __init__(self) -> None:
        self.changes: list[LoggedChange] = []
        self.window: tuple[str, datetime.datetime | None] | None = None


def _attempt(reaction: OnChange[Any], current: _Attempt) -> Step:
    row = Reaction.objects.select_for_update(skip_locked=True).filter(name=reaction.name).first()
    if row is None:
        return Step.BUSY
    if row.state != ReactionState.ACTIVE or (
        row.next_attempt_at is not None and row.next_attempt_at > timezone.now()
    ):
        return Step.WAITING
    with connection.cursor() as cursor:
        if _fell_behind(cursor, row):
            return Step.WAITING
        if not row.window_end:
            cursor.execute("SELECT pg_current_snapshot()::text, now()")
            row.window_end, row.window_at = cursor.fetchone()
        current.window = (row.window_end, row.window_at)
        window = read_window(
            cursor, reaction, snapshot=row.snapshot, window_end=row.window_end,
            after=(row.position_txid, row.position_id), exclude=list(row.own_txids),
            limit=reactive_settings().REACTION_SCAN_ROWS,
        )
        matching = window.matching[: reaction.per_transaction]
        full = len(window.matching) > len(matching)
        last = matching[-1] if full else (window.scanned[-1] if window.scanned else None)
        if matching:
            current.changes.extend(matching)
            _call(reaction, matching)
        cursor.execute("SELECT pg_current_xact_id()::text::bigint, "
                       "pg_snapshot_xmin(%s::pg_snapshot)::text::bigint", [row.snapshot])
        txid, xmin = cursor.fetchone()
    if window.exhausted and not full:
        row.snapshot, row.cursor_at = row.window_end, row.window_at or timezone.now()
        row.window_end, row.window_at, row.position_txid, row.position_id = "", None, 0, 0
    elif last is not None:
        row.position_txid, row.position_id = last.txid, last.log_id
    row.own_txids = [t for t in row.own_txids if t >= xmin] + [txid]
    row.handled += len(matching)
    row.attempts, row.error, row.next_attempt_at, row.failed_change = 0, "", None, None
    row.save()
    return Step.HANDLED if window.scanned else Step.IDLE


def _call(reaction: OnChange[Any], logged: list[LoggedChange]) -> None:
    changes = load_changes(reaction, logged)
    ctx = MutationCtx(ANONYMOUS, runtime)
    if reaction.batch is None:
        reaction.func(ctx, changes[0])
    else:
        reaction.func(ctx, changes)


def _fell_behind(cursor: Any, row: Reaction) -> bool:
    """Mark the reaction fallen behind when the log was pruned past its cursor (it stopped
    holding the log after ``REACTION_MAX_LAG``): handling what is left would skip changes."""
    cursor.execute(
        "SELECT int_value >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint "
        "FROM reactive_state WHERE name = 'pruned' AND int_value IS NOT NULL",
        [row.snapshot],
    )
    found = cursor.fetchone()
    if not (found and found[0]):
        return False
    logger.error(
        "reaction fell behind reaction=%s cursor_at=%s: the change log was pruned past its "
        "cursor; run manage.py reactive_triggers skip %s to resume from the present",
        row.name, row.cursor_at.isoformat(), row.name,
    )
    row.state, row.error = ReactionState.FALLEN_BEHIND, (
        "The change log was pruned past this reaction's cursor (REACTION_MAX_LAG exceeded)."
    )
    row.save(update_fields=["state", "error", "updated_at"])
    return True


def _record_failure(reaction: OnChange[Any], current: _Attempt, exc: BaseException) -> None:
    conf = reactive_settings()
    text = "".join(traceback.format_exception(exc))
    with transaction.atomic():
        row = Reaction.objects.select_for_update().get(name=reaction.name)
        row.attempts += 1
        row.error = text
        row.failed_change = _describe(current.changes) if current.changes else None
        if current.window is not None and not row.window_end:
            row.window_end, row.window_at = current.window
        if row.attempts >= conf.REACTION_MAX_ATTEMPTS:
            row.state, row.next_attempt_at = ReactionState.FAILED, None
            logger.error("reaction parked reaction=%s attempts=%d change=%s", reaction.name,
                         row.attempts, row.failed_change, exc_info=exc)
        else:
            delay = min(conf.REACTION_RETRY_MAX_DELAY,
                        conf.REACTION_RETRY_BASE_DELAY * 2 ** (row.attempts - 1))
            row.next_attempt_at = timezone.now() + datetime.timedelta(seconds=delay)
            logger.warning("reaction failed reaction=%s attempt=%d retry_in=%.1fs",
                           reaction.name, row.attempts, delay, exc_info=exc)
        row.save()


def _describe(changes: list[LoggedChange]) -> dict[str, Any]:
    first, last = changes[0], changes[-1]
    return {"log_id": first.log_id, "txid": first.txid, "op": first.op, "count": len(changes),
            "last_log_id": last.log_id, "last_txid": last.txid}
