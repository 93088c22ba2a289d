"""Crons as the database knows them: one row per declared cron, one row per occurrence."""

from __future__ import annotations

from django.db import models

from .jobs import Job


class Cron(models.Model):
    """A cron declared in some ``<app>/crons.py``, synced from code by the cron tick.

    ``next_run_at`` is the next occurrence to fire; the tick fires it under this row's lock, so
    each occurrence fires once however many beat processes run. A cron no longer declared in
    code is retired (``active`` false, ``retired_at`` set), never deleted: its runs stay.
    """

    name = models.CharField(max_length=200, unique=True)
    schedule = models.CharField(max_length=200)
    function = models.CharField(max_length=512)
    args = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "reactive_cron"
        ordering = ["name"]
        indexes = [models.Index(fields=["active", "next_run_at"], name="reactive_cron_due")]

    def __str__(self) -> str:
        return self.name


class CronRunStatus(models.TextChoices):
    FIRED = "fired", "fired"
    SKIPPED = "skipped", "skipped"


class CronRun(models.Model):
    """One occurrence of a cron: fired (its job carries the outcome) or skipped, with why."""

    cron = models.ForeignKey(Cron, on_delete=models.CASCADE, related_name="runs")
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=16, choices=CronRunStatus.choices)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="cron_runs"
    )
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reactive_cronrun"
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(
                fields=["cron", "scheduled_for"], name="reactive_cronrun_once_per_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cron_id} @ {self.scheduled_for:%Y-%m-%d %H:%M:%S} ({self.status})"

    @property
    def outcome(self) -> str:
        """``skipped``, or the state of the job the run fired (``pending`` … ``success``)."""
        if self.status == CronRunStatus.SKIPPED:
            return "skipped"
        return self.job.state if self.job is not None else "pruned"
