"""The Django app: discovers every installed app's functions once the registry is ready, and
installs the change-capture triggers after each ``migrate``."""

from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig, apps
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class ReactiveConfig(AppConfig):
    name = "reactive"
    label = "reactive"
    verbose_name = "Reactive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reactive import checks, project_checks  # noqa: F401 - registers the checks
        from reactive.conf import reactive_settings
        from reactive.functions.registry import registry

        registry.discover(apps.get_app_configs(), reactive_settings().FUNCTIONS_MODULE)
        from reactive.export import system
        from reactive.observability import logstream

        system.register(registry)
        logstream.install()
        _install_metrics()
        connection_created.connect(_wrap_statements, dispatch_uid="reactive_statement_wrappers")
        from reactive.scheduling import crons

        crons.registry.discover(apps.get_app_configs(), reactive_settings().SCHEDULER_CRONS_MODULE)
        crons.registry.validate(registry)
        post_migrate.connect(_install_triggers, sender=self, dispatch_uid="reactive_triggers")


def _wrap_statements(connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: put reactive's ``execute_wrapper``s on each new
    connection, once: the action write guard, the row counter (metrics) and the query clock
    (``QUERY_STATEMENT_TIMEOUT`` in all)."""
    from reactive.functions.current import count_rows
    from reactive.functions.snapshots import stop_overdue_queries
    from reactive.functions.transaction import guard_writes

    for wrapper in (guard_writes, count_rows, stop_overdue_queries):
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(wrapper)


def _install_metrics() -> None:
    """Count calls and retries, and every round of this process's Reactors."""
    from reactive.live.reactor import Reactor, RoundReport, add_round_listener, running_reactors
    from reactive.observability import metrics

    def round_done(reactor: Reactor, report: RoundReport) -> None:
        counts = [r.counts() for r in running_reactors()]
        metrics.record_round(report.phases_us, report.reruns, report.changes, report.lag,
                             sum(c["sessions"] for c in counts),
                             sum(c["queries"] for c in counts))

    metrics.install()
    add_round_listener(round_done)


def _install_triggers(*, using: str = "default", **kwargs: Any) -> None:
    """After migrate (which runs this once our app is migrated): track every tracked table,
    including tables that later migrations created."""
    from django.db import connections

    from reactive.capture import log, triggers

    if using != "default" or not log.log_exists(using):
        return
    # Views count: an unmanaged model over one is read through it (read sets resolve it to
    # its base tables), so it is there even though it gets no triggers.
    existing = set(connections[using].introspection.table_names(include_views=True))
    models = triggers.tracked_models()
    for model in (m for m in models if m._meta.db_table not in existing):
        # Say so instead of failing the whole migrate.
        print(f"django-reactivity: {_missing_table(model)}",
              file=kwargs.get("stdout") or sys.stdout)
    tables = triggers.install([m for m in models if m._meta.db_table in existing], using=using)
    triggers.drop_stale(set(tables), using)
    if "reactive_reaction" in existing:
        from reactive.reactions.runner import ensure_rows

        ensure_rows()  # new reactions start at the present


def _missing_table(model: Any) -> str:
    meta = model._meta
    if meta.managed:  # a model without a migration yet
        return (f"{meta.label} has no table; run python manage.py makemigrations "
                f"{meta.app_label} and migrate again to capture its changes.")
    return (f"{meta.label} is unmanaged (managed = False) and its table {meta.db_table!r} "
            "does not exist; migrate does not create it. Once it exists, run python manage.py "
            "reactive_triggers install to capture its changes.")
