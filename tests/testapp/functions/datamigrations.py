"""Data migrations the tests run (tests/datamigrations/): rows of Sample whose ``maybe`` is
null get ``maybe = num * 2`` and a ``+`` on their label, so a test sees a row migrated twice.
Label ``bad`` raises; ``slow:<token>`` hangs the first time (marker file in the temp dir)."""

from __future__ import annotations

import os
import tempfile
import time

from reactive import MutationCtx, migration
from tests.testapp.models import Sample


@migration(Sample.objects.filter(maybe__isnull=True), batch_size=10)
def fill_maybe(ctx: MutationCtx, row: Sample) -> None:
    if row.label == "bad":
        raise ValueError(f"row {row.pk} is bad")
    marker = os.path.join(tempfile.gettempdir(), f"reactive-marker-{row.label[5:]}")
    if row.label.startswith("slow:") and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)  # the first time only: a test kills the worker here
    row.maybe = row.num * 2
    row.label += "+"
    row.save(update_fields=["maybe", "label"])
