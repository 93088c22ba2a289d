"""Scheduled jobs: one row per ``ctx.scheduler.run_after/run_at`` call, and its life cycle.

States move only forward, each transition guarded by the state it leaves::

    pending ──► in_progress ──► success | failed
       │             └──► pending (again: a retry policy re-queued it)
       └──► canceled | failed (its function no longer exists)

A job is claimed (pending → in progress) in a short transaction of its own and holds a lease
that its worker renews while it runs. A scheduled mutation also inserts its ``JobCommit`` in
its own SERIALIZABLE transaction: that row, not the job's state, is what makes it run exactly
once, and it never reads the job table there (so concurrent jobs do not conflict).
"""

from __future__ import annotations

from typing import Any

from django.db import models


class JobState(models.TextChoices):
    PENDING = "pending", "pending"
    IN_PROGRESS = "in_progress", "in progress"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"


FINISHED = (JobState.SUCCESS, JobState.FAILED, JobState.CANCELED)


class Job(models.Model):
    """A function call scheduled for ``due_at``.

    ``args`` holds the validated arguments as JSON (ints kept as ints; other non-JSON Convex
    values in their ``$``-encoded form). ``dispatched_at`` is when a Celery task was last sent
    (or is about to be, after commit) and tells the sweeper which jobs still need one.
    ``lease_expires_at`` is set while an action runs and renewed by its worker's heartbeat; a
    lease that runs out means the worker died. ``parent`` is the job that scheduled this one.
    """

    function = models.CharField(max_length=512, db_index=True)
    args = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    due_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )

    class Meta:
        db_table = "reactive_job"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "due_at"], name="reactive_job_state_due"),
            models.Index(fields=["state", "finished_at"], name="reactive_job_state_finished"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.function} ({self.state})"

    @property
    def job_id(self) -> str:
        """The id ``ctx.scheduler`` returned for this job."""
        return str(self.pk)

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    def describe(self) -> dict[str, Any]:
        """The job as a Convex value: what a query returns for it."""
        return {
            "_id": self.job_id,
            "name": self.function,
            "state": self.state,
            "scheduledTime": self.due_at.timestamp() * 1000,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error or None,
        }


class JobCommit(models.Model):
    """Proof that a scheduled mutation committed: written in the mutation's own transaction.

    Its primary key is the job id, so a second run of the same job cannot commit (its insert
    conflicts and it rolls back). A plain column, not a foreign key: the key check would read
    the job row inside the SERIALIZABLE transaction. ``result`` survives a worker that dies
    between that commit and recording the outcome on the job.
    """

    job_id = models.BigIntegerField(primary_key=True)
    result = models.JSONField(null=True, blank=True)
    committed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reactive_jobcommit"

    def __str__(self) -> str:
        return f"job {self.job_id} committed"
