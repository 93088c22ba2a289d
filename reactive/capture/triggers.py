"""Change capture: which tables are tracked, their triggers, and reading and pruning the log.

Every tracked table gets four statement-level triggers (insert, update, delete, truncate)
calling ``reactive_capture()`` (created by migration 0002), which appends the changed rows to
``reactive_change`` in the writer's own transaction and NOTIFYs channel ``reactive``. So writes
from mutations, the admin, ``QuerySet.update()``, ``bulk_create``, raw SQL and other programs
are all seen, in commit order, by any reader's snapshot.
"""

from __future__ import annotations

import decimal
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.models import Model

from reactive.capture.matcher import Change
from reactive.conf import reactive_settings

logger = logging.getLogger(__name__)

CHANNEL = "reactive"
EVENTS = (("ins", "INSERT", "NEW TABLE AS reactive_new"),
          ("upd", "UPDATE", "OLD TABLE AS reactive_old NEW TABLE AS reactive_new"),
          ("del", "DELETE", "OLD TABLE AS reactive_old"),
          ("trunc", "TRUNCATE", ""))
# Django's bookkeeping and our own internal tables: never tracked.
UNTRACKED_TABLES = frozenset({
    "django_migrations", "django_session", "django_content_type", "auth_permission",
    "django_admin_log", "reactive_change", "reactive_state", "reactive_sessionrequest",
    "reactive_jobcommit", "reactive_reaction", "reactive_datamigrationbatch",
})


@dataclass(frozen=True)
class TriggerStatus:
    table: str
    installed: bool


def tracked_models() -> list[type[Model]]:
    """Concrete managed models whose tables are tracked (``TRACKED_APPS``, ``UNTRACKED_MODELS``)."""
    conf = reactive_settings()
    untracked = {label.lower() for label in conf.UNTRACKED_MODELS}
    models = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table in UNTRACKED_TABLES:
            continue
        if conf.TRACKED_APPS != "__all__" and meta.app_label not in conf.TRACKED_APPS:
            continue
        if meta.label_lower in untracked:
            continue
        models.append(model)
    return models


def install(models: Iterable[type[Model]] | None = None, using: str = "default") -> list[str]:
    """Create (or replace) the capture triggers on each model's table; return the tables."""
    tables = []
    with connections[using].cursor() as cursor:
        for model in models if models is not None else tracked_models():
            # A composite key has no single column: the function then logs images unpaired.
            table, pk = model._meta.db_table, model._meta.pk.column or ""
            for suffix, event, referencing in EVENTS:
                refs = f"REFERENCING {referencing} " if referencing else ""
                cursor.execute(
                    f"CREATE OR REPLACE TRIGGER reactive_{suffix} AFTER {event} ON "
                    f"{_quote(table)} {refs}FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION reactive_capture({_literal(pk)})"
                )
            tables.append(table)
    if models is None:
        drop_stale(set(tables), using)
    logger.info("capture triggers installed tables=%d", len(tables))
    return tables


def drop_stale(tracked: set[str], using: str = "default") -> list[str]:
    """Drop our triggers from tables that are no longer tracked (settings changed, model
    removed from TRACKED_APPS/UNTRACKED_MODELS); return those tables."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE 'reactive\\_%%' AND NOT t.tgisinternal"
        )
        stale = sorted(name for (name,) in cursor.fetchall() if name not in tracked)
        for table in stale:
            for suffix, _, _ in EVENTS:
                cursor.execute(f"DROP TRIGGER IF EXISTS reactive_{suffix} ON {_quote(table)}")
    if stale:
        logger.info("capture triggers dropped from untracked tables=%s", ",".join(stale))
    return stale


def remove(models: Iterable[type[Model]] | None = None, using: str = "default") -> list[str]:
    """Drop the capture triggers from each model's table; return the tables."""
    tables = []
    with connections[using].cursor() as cursor:
        for model in models if models is not None else tracked_models():
            table = model._meta.db_table
            for suffix, _, _ in EVENTS:
                cursor.execute(f"DROP TRIGGER IF EXISTS reactive_{suffix} ON {_quote(table)}")
            tables.append(table)
    return tables


def status(using: str = "default") -> list[TriggerStatus]:
    """Whether each tracked table has all four capture triggers."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE 'reactive\\_%%' AND NOT t.tgisinternal GROUP BY c.relname"
        )
        counts = dict(cursor.fetchall())
        existing = set(connection.introspection.table_names(cursor))
    return [
        TriggerStatus(m._meta.db_table, counts.get(m._meta.db_table, 0) == len(EVENTS))
        for m in tracked_models()
        if m._meta.db_table in existing  # tables not migrated yet get triggers at migrate
    ]


def log_exists(using: str = "default") -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass('reactive_change') IS NOT NULL")
        row = cursor.fetchone()
    return bool(row and row[0])


def changes_since(cursor: Any, previous_snapshot: str) -> list[Change]:
    """Rows committed after ``previous_snapshot`` and visible to the current transaction.

    Call inside the REPEATABLE READ transaction whose snapshot is the new one: visibility of
    ``txid`` in the old snapshot, not commit time, decides (docs/internals/reactor.md).
    """
    cursor.execute(
        "SELECT tbl, op, old_row::text, new_row::text FROM reactive_change "
        "WHERE txid >= pg_snapshot_xmin(%s::pg_snapshot) "
        "AND NOT pg_visible_in_snapshot(txid, %s::pg_snapshot) ORDER BY id",
        [previous_snapshot, previous_snapshot],
    )
    return [Change(t, op, _row(old), _row(new)) for t, op, old, new in cursor.fetchall()]


def prune(cursor: Any) -> int:
    """Delete log rows older than ``CHANGE_LOG_RETENTION`` and record the horizon.

    ``reactive_state('pruned')`` keeps the newest pruned row's ``created_at`` (``time_value``)
    and its ``txid`` (``int_value``); both only move forward. Reactors that started before the
    horizon re-run everything instead of reading a log with holes. The txid is the exact test:
    a Reactor whose previous snapshot has ``xmin`` above it saw every pruned row, while the time
    can miss a transaction that stayed open longer than the retention (``created_at`` is its
    start, not its commit). One pruner at a time: the advisory lock is taken inside the same
    statement, so it also holds when ``cursor`` is in autocommit.
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


def _row(text: str | None) -> dict[str, Any] | None:
    # Decimal keeps numeric columns exact for equality with ORM parameters.
    return None if text is None else json.loads(text, parse_float=decimal.Decimal)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
