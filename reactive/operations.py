"""``RunDataMigration``: a schema-migration operation that hands a long data change to a data
migration (``@migration``) run on Celery after ``migrate`` commits, instead of one long UPDATE
inside the schema migration."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.migrations.operations.base import Operation

logger = logging.getLogger(__name__)


class RunDataMigration(Operation):
    """Schedule data migration ``<app_label>:<name>`` when ``migrate`` applies this operation.

    The data migration runs the current code of the function (not the historical models), on
    a Celery worker, after the schema migration's transaction commits. If the broker cannot be
    reached the migration stays pending and a worker's dispatcher sends it later. Unapplying
    does nothing (the data change is not undone). An unknown name fails ``migrate`` with a
    DataMigrationError naming the known ones.
    """

    reversible = True
    reduces_to_sql = False
    elidable = False

    def __init__(self, app_label: str, name: str) -> None:
        self.app_label = app_label
        self.name = name

    @property
    def migration_name(self) -> str:
        return f"{self.app_label}:{self.name}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return ("reactive.operations.RunDataMigration", [self.app_label, self.name], {})

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any,
                          to_state: Any) -> None:
        from reactive.datamigrations import runner, tasks

        if schema_editor.connection.alias != "default":
            return
        row = runner.start(self.migration_name)
        name = row.name

        def send() -> None:
            try:
                tasks.send(name)
            except Exception:
                logger.warning("data migration not sent migration=%s; a worker's dispatcher "
                               "will send it", name, exc_info=True)

        transaction.on_commit(send, using=schema_editor.connection.alias)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any,
                           to_state: Any) -> None:
        pass

    def describe(self) -> str:
        return f"Schedule data migration {self.migration_name}"
