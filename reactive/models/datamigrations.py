"""Data migrations (``@migration``): one row per migration with its state, cursor and counts,
and one row per committed batch.

The row is an ordinary tracked table, so a query can subscribe to a migration's progress and
the admin shows it. States::

    pending ──► running ──► done
                  │  ├────► failed (a row raised: ``failed_pk`` and ``error``; ``run`` resumes)
                  │  └────► canceled (``cancel``; ``run`` resumes)
                  └──(worker died: its lease runs out, a dispatcher sends it again)
"""

from __future__ import annotations

from typing import Any

from django.db import models


class DataMigrationState(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"


class DataMigration(models.Model):
    """One data migration's run.

    ``phase`` is ``main`` (rows in primary-key order after ``cursor``) then ``final`` (rows
    behind the main cursor that others wrote after ``start_snapshot``, after ``final_cursor``).
    ``cursor`` and ``final_cursor`` hold primary keys as JSON. ``would_change`` counts, per
    table, the rows a dry run's batches wrote before being rolled back.
    """

    name = models.CharField(max_length=512, unique=True)
    state = models.CharField(
        max_length=16, choices=DataMigrationState.choices, default=DataMigrationState.PENDING
    )
    dry_run = models.BooleanField(default=False)
    batch_size = models.PositiveIntegerField()
    phase = models.CharField(max_length=8, default="main")
    cursor = models.JSONField(null=True, blank=True)
    final_cursor = models.JSONField(null=True, blank=True)
    start_snapshot = models.TextField(blank=True, default="")
    total = models.BigIntegerField(default=0)
    done = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    batches = models.BigIntegerField(default=0)
    would_change = models.JSONField(default=dict, blank=True)
    failed_pk = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reactive_datamigration"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"data migration {self.name} ({self.state})"

    def describe(self) -> dict[str, Any]:
        """The migration as a Convex value: what a progress query returns."""
        return {
            "_id": str(self.pk),
            "name": self.name,
            "state": self.state,
            "dryRun": self.dry_run,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "skipped": self.skipped,
            "failedPk": self.failed_pk or None,
            "error": self.error or None,
        }


class DataMigrationBatch(models.Model):
    """A committed batch: its transaction id keeps the final pass from revisiting the
    migration's own writes. Deleted when the migration finishes."""

    migration = models.ForeignKey(DataMigration, on_delete=models.CASCADE, related_name="+")
    txid = models.BigIntegerField()
    rows = models.PositiveIntegerField()
    committed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reactive_datamigrationbatch"
        indexes = [models.Index(fields=["migration", "txid"], name="reactive_dmbatch_txid")]

    def __str__(self) -> str:
        return f"batch {self.txid} of {self.migration_id}"
