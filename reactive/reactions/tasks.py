"""The Celery task that drains a reaction, and the dispatcher each worker starts.

Found through ``reactive.tasks`` (Celery's ``autodiscover_tasks``). Tasks only delegate.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from reactive.conf import reactive_settings
from reactive.reactions import runner

DRAIN_TASK = "reactive.reaction_drain"


@shared_task(name=DRAIN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def reaction_drain(name: str) -> str:
    """Handle the pending changes of reaction ``name`` (a duplicate delivery does nothing)."""
    return runner.drain(name).value


def send_drain(name: str) -> None:
    options: dict[str, Any] = {}
    queue = reactive_settings().REACTION_QUEUE
    if queue:
        options["queue"] = queue
    reaction_drain.apply_async((name,), **options)
