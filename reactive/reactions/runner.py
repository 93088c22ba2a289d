"""Running a reaction: a drain reads the pending changes of a window once, then handles them
one by one (or ``batch=`` at a time) in commit order, each in its own SERIALIZABLE
transaction that advances the cursor with it; failures are retried with backoff, then parked.

Exactly once: the handler's writes and the cursor move commit together or not at all. A
worker killed mid-handler leaves the cursor where it was, so the change is handled again by
the next drain. One drain per reaction at a time: it holds a session advisory lock (released
by Postgres when its connection dies), and each step also takes the reaction's row with
``FOR UPDATE SKIP LOCKED``; a step whose cursor is not where its plan expects reads again.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.functions.context import ActionCtx, MutationCtx, SyncActionCtx
from reactive.functions.runtime import runtime
from reactive.functions.transaction import action_scope, run_serializable
from reactive.models import Reaction, ReactionState
from reactive.reactions.definitions import Change, OnChange, registry
from reactive.reactions.log import LoggedChange, load_changes, matching_since, read_window
from reactive.types import ANONYMOUS

logger = logging.getLogger(__name__)

# The advisory lock a drain holds: (namespace, hashtext(reaction name)). The dispatcher reads
# pg_locks for it to tell a running drain from a queued one.
LOCK_NAMESPACE = 0x52454143  # "REAC"


class Step(enum.Enum):
    HANDLED = "handled"  # changes handled (or skipped as not matching): step again
    IDLE = "idle"  # the cursor reached the present
    BUSY = "busy"  # another worker holds the reaction
    WAITING = "waiting"  # parked, or backing off after a failure
    FAILED = "failed"  # the handler raised; recorded


Cursor = tuple[str, str, int, int]  # snapshot, window_end, position (txid, log id)


@dataclass(frozen=True)
class Plan:
    """The matching changes left in the window a drain read, and the cursor the reaction's
    row must still have for them to be next (else another worker moved it: read again)."""

    cursor: Cursor
    window_at: datetime.datetime | None
    pending: tuple[tuple[LoggedChange, Change[Any]], ...]
    exhausted: bool  # nothing in the window after the last scanned row
    last_scanned: LoggedChange | None


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


def drain(name: str, *, max_steps: int = 100_000) -> Step:
    """Handle the pending changes of reaction ``name`` until it is idle, busy, waiting or
    failed; return why it stopped. After releasing its lock an idle drain looks once more, so
    a drain turned away as busy meanwhile loses no change."""
    reaction = registry.get(name)
    ensure_rows([reaction])
    while True:
        if not _lock(reaction, True):
            return Step.BUSY
        try:
            outcome = _steps(reaction, max_steps)
        finally:
            _lock(reaction, False)
        if outcome is not Step.IDLE or not _more(reaction):
            return outcome


def _steps(reaction: OnChange[Any], max_steps: int) -> Step:
    plan: Plan | None = None
    for _ in range(max_steps):
        outcome, plan = step(reaction, plan)
        if outcome is not Step.HANDLED:
            return outcome
    return Step.HANDLED


def step(reaction: OnChange[Any], plan: Plan | None = None) -> tuple[Step, Plan | None]:
    """Handle the next matching change (or batch) of ``reaction`` in one transaction; return
    the outcome and what is left of the plan (None: read the log again next time).

    Without a plan it first reads the window in a transaction at the connection's own level
    (READ COMMITTED by default): moving the cursor over changes that do not match needs no
    SERIALIZABLE transaction, and taking none keeps idle reactions on a busy table from
    conflicting with each other's cursor rows.
    """
    if plan is None:
        outcome, plan = _plan(reaction)
        if plan is None:
            return outcome, None
    current = _Attempt()
    read = plan

    def attempt(_: int) -> tuple[Step, Plan | None]:
        current.changes.clear()
        return _handle(reaction, current, read)

    try:
        if reaction.action:
            return _act(reaction, current, read)
        return run_serializable(attempt, function=f"on_change {reaction.name}")
    except _Moved:
        return Step.HANDLED, None
    except Exception as exc:
        _record_failure(reaction, current, exc)
        return Step.FAILED, None


class _Attempt:
    """What the last attempt was handling, for the failure record: its changes and window
    (kept, so that ``skip`` moves past exactly those changes)."""

    def __init__(self) -> None:
        self.changes: list[LoggedChange] = []
        self.window: tuple[str, datetime.datetime | None] | None = None


def _locked(reaction: OnChange[Any]) -> tuple[Reaction | None, Step]:
    """The reaction's row, locked; or None and why not."""
    row = Reaction.objects.select_for_update(skip_locked=True).filter(name=reaction.name).first()
    if row is None:
        return None, Step.BUSY
    if row.state != ReactionState.ACTIVE or (
        row.next_attempt_at is not None and row.next_attempt_at > timezone.now()
    ):
        return None, Step.WAITING
    return row, Step.HANDLED


def _plan(reaction: OnChange[Any]) -> tuple[Step, Plan | None]:
    """Read the window after the cursor; when nothing in it matches, move the cursor past it
    here. Returns a plan only when there are changes to handle."""
    with transaction.atomic():
        row, why = _locked(reaction)
        if row is None:
            return why, None
        plan = _read(reaction, row)
        if plan is None:
            return Step.WAITING, None
        row.window_end, row.window_at = plan.cursor[1], plan.window_at
        if plan.pending:
            row.save(update_fields=["window_end", "window_at", "updated_at"])
            return Step.HANDLED, plan
        _advance(row, plan, ())
        row.save()
    return (Step.HANDLED if plan.last_scanned else Step.IDLE), None


def _handle(reaction: OnChange[Any], current: _Attempt, plan: Plan
            ) -> tuple[Step, Plan | None]:
    """Call the handler with the plan's next change(s), then move the cursor with one UPDATE
    that also checks it is still where the plan expects (else _Moved rolls the call back)."""
    current.window = (plan.cursor[1], plan.window_at)
    take = plan.pending[: reaction.per_transaction]
    current.changes.extend(logged for logged, _ in take)
    _call(reaction, [change for _, change in take])
    left = _move(reaction, plan, len(take))
    if left is _MOVED:
        raise _Moved
    return Step.HANDLED, left


def _act(reaction: OnChange[Any], current: _Attempt, plan: Plan) -> tuple[Step, Plan | None]:
    """An action handler, at least once: it runs outside any transaction, then the cursor
    moves in a transaction of its own. A worker killed between the two runs it again."""
    current.window = (plan.cursor[1], plan.window_at)
    take = plan.pending[: reaction.per_transaction]
    current.changes.extend(logged for logged, _ in take)
    changes = [change for _, change in take]
    arg = changes[0] if reaction.batch is None else changes
    with action_scope(reaction.name):
        if reaction.is_async:
            asyncio.run(reaction.func(ActionCtx(ANONYMOUS, runtime), arg))
        else:
            reaction.func(SyncActionCtx(ANONYMOUS, runtime), arg)
    with transaction.atomic():
        left = _move(reaction, plan, len(take))
    return Step.HANDLED, None if left is _MOVED else left


_MOVED = object()  # _move's answer when the cursor was not where the plan expects


def _move(reaction: OnChange[Any], plan: Plan, taken: int) -> Any:
    """Move the cursor past the plan's first ``taken`` changes; return what is left of the
    plan (None when nothing), or _MOVED when the cursor was elsewhere."""
    rest = plan.pending[taken:]
    moved = Reaction(snapshot=plan.cursor[0], window_end=plan.cursor[1],
                     window_at=plan.window_at, position_txid=plan.cursor[2],
                     position_id=plan.cursor[3])
    _advance(moved, plan, rest)
    with connection.cursor() as cursor:
        cursor.execute(ADVANCE, [
            moved.snapshot, moved.cursor_at if moved.snapshot != plan.cursor[0] else None,
            moved.window_end, moved.window_at, moved.position_txid, moved.position_id,
            reaction.model._meta.db_table, taken, timezone.now(), reaction.name, *plan.cursor,
        ])
        if cursor.rowcount != 1:
            return _MOVED
    return replace(plan, cursor=_cursor(moved), pending=rest) if rest else None


class _Moved(Exception):
    """The cursor is not where the plan expects (an operator's skip, another drain): the
    handler's writes roll back and the drain reads the log again."""


# The cursor moves only from where the plan expects. Own transactions are kept (to be left
# out of later windows) only when they wrote the watched table, and only while they can
# still appear in a window (at or above the old snapshot's xmin).
ADVANCE = """
UPDATE reactive_reaction SET snapshot = %s, cursor_at = COALESCE(%s, cursor_at),
  window_end = %s, window_at = %s, position_txid = %s, position_id = %s,
  own_txids = (SELECT COALESCE(jsonb_agg(t), '[]'::jsonb) FROM jsonb_array_elements(own_txids) t
               WHERE t::text::bigint >= pg_snapshot_xmin(snapshot::pg_snapshot)::text::bigint)
    || CASE WHEN EXISTS (SELECT 1 FROM reactive_change c WHERE c.txid = pg_current_xact_id()
                         AND c.tbl = %s)
       THEN jsonb_build_array(pg_current_xact_id()::text::bigint) ELSE '[]'::jsonb END,
  handled = handled + %s, attempts = 0, error = '', next_attempt_at = NULL,
  failed_change = NULL, updated_at = %s
WHERE name = %s AND state = 'active' AND snapshot = %s AND window_end = %s
  AND position_txid = %s AND position_id = %s
"""


def _advance(row: Reaction, plan: Plan, rest: tuple[tuple[LoggedChange, Change[Any]], ...]
             ) -> None:
    """Move the row's cursor to just before ``rest`` (past the window when it is empty and
    the window was read to its end)."""
    if not rest and plan.exhausted:
        row.snapshot, row.cursor_at = plan.cursor[1], plan.window_at or timezone.now()
        row.window_end, row.window_at, row.position_txid, row.position_id = "", None, 0, 0
        return
    last = plan.pending[len(plan.pending) - len(rest) - 1][0] if rest else plan.last_scanned
    if last is not None:
        row.position_txid, row.position_id = last.txid, last.log_id


def _cursor(row: Reaction) -> Cursor:
    return row.snapshot, row.window_end, row.position_txid, row.position_id


def _read(reaction: OnChange[Any], row: Reaction) -> Plan | None:
    """Read the window after the row's cursor (taking its end now if it has none) and load
    every matching change in it; None when the reaction fell behind."""
    with connection.cursor() as cursor:
        if _fell_behind(cursor, row):
            return None
        window_end, window_at = row.window_end, row.window_at
        if not window_end:
            cursor.execute("SELECT pg_current_snapshot()::text, now()")
            window_end, window_at = cursor.fetchone()
        window = read_window(
            cursor, reaction, snapshot=row.snapshot, window_end=window_end,
            after=(row.position_txid, row.position_id), exclude=list(row.own_txids),
            limit=reactive_settings().REACTION_SCAN_ROWS,
        )
    matching = window.matching
    changes = load_changes(reaction, matching) if matching else []
    return Plan(
        cursor=(row.snapshot, window_end, row.position_txid, row.position_id),
        window_at=window_at, pending=tuple(zip(matching, changes, strict=True)),
        exhausted=window.exhausted,
        last_scanned=window.scanned[-1] if window.scanned else None,
    )


def _call(reaction: OnChange[Any], changes: list[Change[Any]]) -> None:
    ctx = MutationCtx(ANONYMOUS, runtime)
    if reaction.batch is None:
        reaction.func(ctx, changes[0])
    else:
        reaction.func(ctx, changes)


def _lock(reaction: OnChange[Any], take: bool) -> bool:
    """Take (without waiting) or release the drain's session advisory lock."""
    function = "pg_try_advisory_lock" if take else "pg_advisory_unlock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, hashtext(%s))", [LOCK_NAMESPACE, reaction.name])
        found = cursor.fetchone()
    return bool(found and found[0])


def _more(reaction: OnChange[Any]) -> bool:
    """Whether a change the reaction handles was committed after its cursor: changes that do
    not match wait for the next drain, so an idle reaction on a busy table lets go."""
    row = Reaction.objects.filter(name=reaction.name).only("snapshot", "own_txids").first()
    if row is None:
        return False
    with connection.cursor() as cursor:
        return matching_since(cursor, reaction, row.snapshot, list(row.own_txids))


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
