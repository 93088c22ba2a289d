"""Plain Celery tasks of the test app: the baseline of bench/scheduler_latency.py."""

from __future__ import annotations

from celery import shared_task

from tests.testapp.models import Note


@shared_task(name="testapp.bare_note", ignore_result=True)
def bare_note(body: str) -> None:
    """The same ORM write as the scheduled mutation `testapp/jobs:write_note`, with no job."""
    Note.objects.create(body=body)
