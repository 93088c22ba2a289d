"""The app's own tables. Each submodule owns one concern; import models from here."""

from __future__ import annotations

from .crons import Cron, CronRun, CronRunStatus
from .datamigrations import DataMigration, DataMigrationBatch, DataMigrationState
from .documents import Document, DocumentShape
from .jobs import Job, JobCommit, JobState
from .logs import FunctionLog, Health
from .reactions import Reaction, ReactionState
from .sessions import SessionRequest
from .storage import StoredFile, UploadClaim

__all__ = [
    "Cron",
    "CronRun",
    "CronRunStatus",
    "DataMigration",
    "DataMigrationBatch",
    "DataMigrationState",
    "Document",
    "DocumentShape",
    "FunctionLog",
    "Health",
    "Job",
    "JobCommit",
    "JobState",
    "Reaction",
    "ReactionState",
    "SessionRequest",
    "StoredFile",
    "UploadClaim",
]
