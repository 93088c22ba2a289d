"""Change capture: which tables are tracked, and installing, removing and checking their triggers.

Every tracked table gets four statement-level triggers (insert, update, delete, truncate)
calling ``reactive_capture()`` (created by migration 0002), which appends the changed rows to
``reactive_change`` in the writer's own transaction and NOTIFYs channel ``reactive``. So writes
from mutations, the admin, ``QuerySet.update()``, ``bulk_create``, raw SQL and other programs
are all seen, in commit order, by any reader's snapshot. Reading the log is
:mod:`reactive.capture.log`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.db import connections
from django.db.models import Model

import reactive.capture.catalog as catalog
from reactive.capture.catalog import TRIGGER_KINDS, relkinds
from reactive.conf import reactive_settings
from reactive.sql import quote_ident, quote_literal

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
    "reactive_jobcommit", "reactive_untrackedread", "reactive_uploadclaim",
    "reactive_reaction", "reactive_datamigrationbatch", "reactive_documentshape",
    "reactive_functionlog",
})


@dataclass(frozen=True)
class TriggerStatus:
    table: str
    installed: bool


def tracked_models() -> list[type[Model]]:
    """Concrete models whose tables are tracked (``TRACKED_APPS``, ``UNTRACKED_MODELS``).

    Unmanaged models count too: their table was made by someone else, but writes to it must
    still reach live queries. Those whose ``db_table`` is not an ordinary table (a view: read
    sets resolve it to its base tables) get no triggers; see :func:`trackable`.
    """
    conf = reactive_settings()
    untracked = {label.lower() for label in conf.UNTRACKED_MODELS}
    models = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.db_table in UNTRACKED_TABLES:
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
    chosen = list(models if models is not None else tracked_models())
    with connections[using].cursor() as cursor:
        kinds = relkinds(cursor, (m._meta.db_table for m in chosen))
        for model in chosen:
            # A composite key has no single column: the function then logs images unpaired.
            table, pk = model._meta.db_table, model._meta.pk.column or ""
            if kinds.get(table) not in TRIGGER_KINDS:
                continue  # not created yet, or a view (resolved to its tables when read)
            for suffix, event, referencing in EVENTS:
                refs = f"REFERENCING {referencing} " if referencing else ""
                cursor.execute(
                    f"CREATE OR REPLACE TRIGGER reactive_{suffix} AFTER {event} ON "
                    f"{quote_ident(table)} {refs}FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION reactive_capture({quote_literal(pk)})"
                )
                # ALWAYS: also under session_replication_role = replica (logical replication
                # apply workers, pg_restore); only ALTER TABLE ... DISABLE TRIGGER stops it.
                cursor.execute(
                    f"ALTER TABLE {quote_ident(table)} ENABLE ALWAYS TRIGGER reactive_{suffix}"
                )
            tables.append(table)
    if models is None:
        drop_stale(set(tables), using)
    catalog.forget()
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
                cursor.execute(f"DROP TRIGGER IF EXISTS reactive_{suffix} ON {quote_ident(table)}")
    if stale:
        logger.info("capture triggers dropped from untracked tables=%s", ",".join(stale))
    return stale


def remove(models: Iterable[type[Model]] | None = None, using: str = "default") -> list[str]:
    """Drop the capture triggers from each model's table; return the tables."""
    tables = []
    chosen = list(models if models is not None else tracked_models())
    with connections[using].cursor() as cursor:
        kinds = relkinds(cursor, (m._meta.db_table for m in chosen))
        for model in chosen:
            table = model._meta.db_table
            if kinds.get(table) not in TRIGGER_KINDS:
                continue
            for suffix, _, _ in EVENTS:
                cursor.execute(f"DROP TRIGGER IF EXISTS reactive_{suffix} ON {quote_ident(table)}")
            tables.append(table)
    catalog.forget()
    return tables


def status(using: str = "default") -> list[TriggerStatus]:
    """Whether each tracked table has all four capture triggers."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE 'reactive\\_%%' AND NOT t.tgisinternal AND t.tgenabled = 'A' "
            "GROUP BY c.relname"
        )
        counts = dict(cursor.fetchall())
        models = tracked_models()
        kinds = relkinds(cursor, (m._meta.db_table for m in models))
    return [
        TriggerStatus(m._meta.db_table, counts.get(m._meta.db_table, 0) == len(EVENTS))
        for m in models
        # tables not migrated yet get triggers at migrate; views need none
        if kinds.get(m._meta.db_table) in TRIGGER_KINDS
    ]




