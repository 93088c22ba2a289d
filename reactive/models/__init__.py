"""The app's own tables. Each submodule owns one concern; import models from here."""

from __future__ import annotations

from .crons import Cron, CronRun, CronRunStatus
from .documents import Document, DocumentShape
from .jobs import Job, JobCommit, JobState
from .sessions import SessionRequest
from .storage import StoredFile, UploadClaim

__all__ = [
    "Cron", "CronRun", "CronRunStatus", "Document", "DocumentShape", "Job", "JobCommit",
    "JobState", "SessionRequest", "StoredFile", "UploadClaim",
]
