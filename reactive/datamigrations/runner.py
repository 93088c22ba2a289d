"""Running a data migration: batches of rows in primary-key order, each one SERIALIZABLE
transaction that applies the function to its rows and advances the cursor with them.

Exactly once per row: a batch's writes and its cursor move commit together, so a crash (a
worker killed mid-batch, a database restart) resumes after the last committed batch. Each batch
re-reads its rows through the queryset, so rows that stopped matching are skipped, and a
concurrent write to a row being migrated is a serialization failure that retries the batch.
After the main pass, a final pass visits the rows behind the cursor that others wrote since
the run started (read from the change log, the migration's own batches excluded).
"""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from reactive.capture.triggers import tracked_models
from reactive.datamigrations.definitions import DataMigrationDefinition, registry
from reactive.exceptions import DataMigrationError
from reactive.functions.context import MutationCtx
from reactive.functions.runtime import runtime
from reactive.functions.transaction import run_serializable
from reactive.models import DataMigration, DataMigrationBatch, DataMigrationState
from reactive.sql import quote_ident
from reactive.types import ANONYMOUS

logger = logging.getLogger(__name__)

ACTIVE = (DataMigrationState.PENDING, DataMigrationState.RUNNING)
ENDED = (DataMigrationState.DONE, DataMigrationState.FAILED, DataMigrationState.CANCELED)


class Batch(enum.Enum):
    COMMITTED = "committed"
    STOPPED = "stopped"  # done, failed or canceled
    BUSY = "busy"  # another worker holds the migration


def check_runnable(definition: DataMigrationDefinition[Any]) -> None:
    """Raise DataMigrationError unless the model's table is tracked by change capture."""
    if definition.model not in tracked_models():
        raise DataMigrationError(
            f"Data migration {definition.name!r} runs over {definition.model._meta.label}, "
            "whose table is not tracked by change capture (TRACKED_APPS / UNTRACKED_MODELS), "
            "so rows written behind its cursor could not be found; track the model."
        )


def start(name: str, *, dry_run: bool = False, batch_size: int | None = None) -> DataMigration:
    """Make migration ``name`` pending (new, or resumed after a failure or cancel) and return
    its row; a running one is left alone, a finished real run stays done."""
    definition = registry.get(name)
    check_runnable(definition)
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise DataMigrationError(f"--batch-size must be at least 1, not {batch_size!r}.")
    with transaction.atomic():
        row = DataMigration.objects.select_for_update().filter(name=name).first()
        if row is not None and row.state in ACTIVE:
            return row
        if row is not None and row.state == DataMigrationState.DONE and not (
            row.dry_run or dry_run
        ):
            return row
        fresh = row is None or row.state == DataMigrationState.DONE or row.dry_run != dry_run
        row = row or DataMigration(name=name)
        if fresh:
            _reset(row, definition, dry_run)
        row.state, row.error, row.failed_pk = DataMigrationState.PENDING, "", ""
        row.batch_size = batch_size or row.batch_size or definition.batch_size
        row.heartbeat_at, row.finished_at = timezone.now(), None
        row.save()
    logger.info("data migration started migration=%s dry_run=%s fresh=%s", name, dry_run, fresh)
    return row


def cancel(name: str) -> DataMigration:
    """Stop migration ``name`` after its current batch; ``start`` resumes it later."""
    registry.get(name)
    with transaction.atomic():
        row = DataMigration.objects.select_for_update().filter(name=name).first()
        if row is None or row.state not in ACTIVE:
            state = row.state if row else "never run"
            raise DataMigrationError(f"Data migration {name!r} is not running ({state}).")
        row.state = DataMigrationState.CANCELED
        row.save()
    return row


def run(name: str, on_batch: Callable[[DataMigration], None] | None = None) -> str:
    """Run batches of migration ``name`` until it ends or another worker holds it; return its
    state then. Never raises for the function's own errors; they are recorded."""
    definition = registry.get(name)
    while True:
        outcome = batch(definition)
        if on_batch is not None:
            on_batch(DataMigration.objects.get(name=name))
        if outcome is not Batch.COMMITTED:
            row = DataMigration.objects.filter(name=name).first()
            return row.state if row else "missing"


def batch(definition: DataMigrationDefinition[Any]) -> Batch:
    """Run the next batch in one transaction (see the module docstring)."""
    failing: list[Any] = []

    def attempt(_: int) -> Batch:
        failing.clear()
        return _attempt(definition, failing)

    try:
        return run_serializable(attempt, function=f"data migration {definition.name}")
    except Exception as exc:
        _fail(definition.name, failing[-1] if failing else None, exc)
        return Batch.STOPPED


def _attempt(definition: DataMigrationDefinition[Any], failing: list[Any]) -> Batch:
    row = DataMigration.objects.select_for_update(skip_locked=True).filter(
        name=definition.name).first()
    if row is None:
        return Batch.BUSY
    if row.state not in ACTIVE:
        return Batch.STOPPED
    row.state = DataMigrationState.RUNNING
    size, pk = row.batch_size, definition.model._meta.pk
    assert pk is not None
    queryset = definition.queryset.all()
    if row.phase == "main":
        after = {} if row.cursor is None else {"pk__gt": pk.to_python(row.cursor)}
        rows = list(queryset.filter(**after).order_by("pk")[:size])
        found = len(rows)
    else:
        candidates = _final_candidates(row, definition, size)
        rows = list(queryset.filter(pk__in=candidates).order_by("pk"))
        row.skipped += len(candidates) - len(rows)
        found = len(candidates)
    savepoint = transaction.savepoint() if row.dry_run else None
    ctx = MutationCtx(ANONYMOUS, runtime)
    for item in rows:
        failing.append(item.pk)
        definition.func(ctx, item)
    if savepoint is not None:
        written = _writes()
        transaction.savepoint_rollback(savepoint)
        for table, count in written.items():
            row.would_change[table] = row.would_change.get(table, 0) + count
    elif rows:
        DataMigrationBatch.objects.create(migration=row, txid=_txid(), rows=len(rows))
    _advance(row, rows, found, size)
    row.save()
    return Batch.COMMITTED if row.state == DataMigrationState.RUNNING else Batch.STOPPED


def _advance(row: DataMigration, rows: list[Any], found: int, size: int) -> None:
    row.done += len(rows)
    row.batches += 1
    row.heartbeat_at = timezone.now()
    if row.phase == "main":
        if rows:
            row.cursor = _json_pk(rows[-1].pk)
        if found < size:
            row.phase, row.final_cursor = "final", None
        return
    if rows:
        row.final_cursor = _json_pk(rows[-1].pk)
    if found < size:
        row.state, row.finished_at = DataMigrationState.DONE, timezone.now()
        DataMigrationBatch.objects.filter(migration=row).delete()
        logger.info("data migration done migration=%s rows=%d skipped=%d batches=%d",
                    row.name, row.done, row.skipped, row.batches)


def _final_candidates(row: DataMigration, definition: DataMigrationDefinition[Any],
                      size: int) -> list[Any]:
    """Primary keys behind the main cursor of rows others wrote since the run started, after
    ``final_cursor``, in order (typed by Postgres from the logged images)."""
    model = definition.model
    table, pk = model._meta.db_table, model._meta.pk
    assert pk is not None
    if row.cursor is None:
        return []
    _require_log(row)
    image = (f"(jsonb_populate_record(NULL::{quote_ident(table)}, c.new_row))."
             f"{quote_ident(pk.column)}")
    bounds, params = "", []
    if row.final_cursor is not None:
        bounds = " AND k.pk > %s"
        params.append(pk.get_db_prep_value(pk.to_python(row.final_cursor), connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT k.pk FROM (SELECT {image} AS pk FROM reactive_change c "
            "WHERE c.tbl = %s AND c.new_row IS NOT NULL "
            "AND c.txid >= pg_snapshot_xmin(%s::pg_snapshot) "
            "AND NOT pg_visible_in_snapshot(c.txid, %s::pg_snapshot) "
            "AND c.txid::text::bigint NOT IN (SELECT txid FROM reactive_datamigrationbatch "
            f"WHERE migration_id = %s)) k WHERE k.pk <= %s{bounds} ORDER BY k.pk LIMIT %s",
            [table, row.start_snapshot, row.start_snapshot, row.pk,
             pk.get_db_prep_value(pk.to_python(row.cursor), connection), *params, size],
        )
        return [found for (found,) in cursor.fetchall()]


def _require_log(row: DataMigration) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT int_value >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint "
            "FROM reactive_state WHERE name = 'pruned' AND int_value IS NOT NULL",
            [row.start_snapshot],
        )
        found = cursor.fetchone()
    if found and found[0]:
        raise DataMigrationError(
            f"The change log was pruned while data migration {row.name!r} ran, so rows written "
            "behind its cursor since it started cannot all be found. Raise "
            "CHANGE_LOG_RETENTION above the migration's duration and run it again."
        )


def _fail(name: str, pk: Any, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    with transaction.atomic():
        row = DataMigration.objects.select_for_update().get(name=name)
        row.state, row.error = DataMigrationState.FAILED, text
        row.failed_pk = "" if pk is None else str(pk)
        row.finished_at = timezone.now()
        row.save()
    logger.error("data migration failed migration=%s pk=%s", name, pk, exc_info=exc)


def _reset(row: DataMigration, definition: DataMigrationDefinition[Any], dry_run: bool) -> None:
    if row.pk is not None:
        DataMigrationBatch.objects.filter(migration=row).delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        (row.start_snapshot,) = cursor.fetchone()
    row.dry_run, row.phase, row.cursor, row.final_cursor = dry_run, "main", None, None
    row.done = row.skipped = row.batches = 0
    row.would_change = {}
    row.total = definition.queryset.count()
    row.started_at = timezone.now()


def _writes() -> dict[str, int]:
    """Rows this transaction wrote so far, per table (from the change log)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tbl, count(*) FROM reactive_change "
                       "WHERE txid = pg_current_xact_id_if_assigned() GROUP BY tbl")
        return {table: int(count) for table, count in cursor.fetchall()}


def _txid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        found = cursor.fetchone()
    return int(found[0]) if found else 0


def _json_pk(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)


