"""The Celery task that runs a data migration, how it is sent, and the resend of migrations
whose worker died (their lease ran out) or whose task never reached the broker.

Found through ``reactive.tasks``. Tasks only delegate.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.datamigrations import runner
from reactive.models import DataMigration

logger = logging.getLogger(__name__)

RUN_TASK = "reactive.data_migration"


@shared_task(name=RUN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def data_migration(name: str) -> str:
    """Run data migration ``name`` until it ends (a duplicate delivery steps aside)."""
    return runner.run(name)


def send(name: str) -> None:
    """Send the task for migration ``name`` now."""
    options: dict[str, Any] = {}
    queue = reactive_settings().DATA_MIGRATION_QUEUE
    if queue:
        options["queue"] = queue
    data_migration.apply_async((name,), **options)


def resend_stale() -> int:
    """Send again the active migrations with no batch (or send) for ``DATA_MIGRATION_LEASE``
    seconds: the worker running it died, or the task was lost. Returns how many."""
    lease = datetime.timedelta(seconds=reactive_settings().DATA_MIGRATION_LEASE)
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            DataMigration.objects.select_for_update(skip_locked=True)
            .filter(state__in=runner.ACTIVE, heartbeat_at__lt=now - lease)
            .values_list("name", flat=True)
        )
        DataMigration.objects.filter(name__in=stale).update(heartbeat_at=now)
    for name in stale:
        logger.warning("data migration resent migration=%s: no batch for %s", name, lease)
        send(name)
    return len(stale)
