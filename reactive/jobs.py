"""Running one scheduled job: claim it, run its function with no identity, record the outcome.

Mutations run exactly once: the claim, the function's writes and the outcome commit in one
SERIALIZABLE transaction, so a duplicate delivery either waits and then finds the job done, or
conflicts, retries and finds it done. Actions run at most once: they are claimed (committed)
before they start and hold a lease that a heartbeat thread renews; a worker that dies lets the
lease run out and the sweeper ends the job as failed.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from . import retries
from .conf import reactive_settings
from .definitions import FunctionDefinition
from .exceptions import FunctionNotFound
from .models import Job, JobState
from .registry import registry
from .runtime import Runtime, runtime
from .scheduler import decode_args, running, send, storable
from .transaction import RETRYABLE, run_serializable, sqlstate
from .types import ANONYMOUS, FunctionKind

logger = logging.getLogger(__name__)

AnyDefinition = FunctionDefinition[Any, Any]

# A task may arrive a little before its ETA (clock skew between hosts); later than this
# early, it is sent back to the broker to wait.
EARLY_TOLERANCE = datetime.timedelta(seconds=1)


def worker_name() -> str:
    """``host:pid`` of this process, recorded on the jobs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: int, runner: Runtime = runtime) -> str | None:
    """Run job ``job_id`` if it is still pending; return its new state, or None if skipped.

    Safe to call any number of times, concurrently too (duplicate deliveries): only one call
    runs the function. Never raises for the function's own errors; they are recorded.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.state != JobState.PENDING:
        logger.debug("job skipped job=%d state=%s", job_id, job.state if job else "missing")
        return None
    now = timezone.now()
    if job.due_at > now + EARLY_TOLERANCE:
        send(job.pk, job.due_at, now)
        return None
    try:
        definition = runner.functions.get(job.function, internal=True)
    except FunctionNotFound:
        return _fail_missing(job)
    if definition.kind is FunctionKind.MUTATION:
        return _run_mutation(job, definition, runner)
    return _run_action(job, definition, runner)


def _run_mutation(job: Job, definition: AnyDefinition, runner: Runtime) -> str | None:
    args = decode_args(job.args)

    def attempt(number: int) -> str | None:
        now = timezone.now()
        claimed = Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
            state=JobState.IN_PROGRESS,
            attempts=job.attempts + 1,
            started_at=now,
            worker=worker_name(),
        )
        if not claimed:
            return None
        try:
            with transaction.atomic(), running(job.pk):  # a savepoint: failures keep the claim
                result = runner.run(definition, args, ANONYMOUS, internal=True)
        except Exception as exc:
            if sqlstate(exc) in RETRYABLE:
                raise  # the whole transaction must run again
            return _record_failure(job.pk, job.attempts + 1, definition, exc)
        return _record_success(job.pk, result)

    try:
        return run_serializable(attempt, function=definition.name)
    except Exception as exc:
        with transaction.atomic():
            if (
                not Job.objects.select_for_update()
                .filter(pk=job.pk, state=JobState.PENDING)
                .exists()
            ):
                return None
            return _record_failure(job.pk, job.attempts + 1, definition, exc)


def _run_action(job: Job, definition: AnyDefinition, runner: Runtime) -> str | None:
    lease = reactive_settings().SCHEDULER_ACTION_LEASE
    attempt = job.attempts + 1
    now = timezone.now()
    claimed = Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
        state=JobState.IN_PROGRESS,
        attempts=attempt,
        started_at=now,
        worker=worker_name(),
        lease_expires_at=now + datetime.timedelta(seconds=lease),
    )
    if not claimed:
        return None
    logger.info("job started job=%d function=%s attempt=%d", job.pk, definition.name, attempt)
    heartbeat = _Heartbeat(job.pk, attempt, lease)
    heartbeat.start()
    try:
        with running(job.pk):
            result = runner.run(definition, decode_args(job.args), ANONYMOUS, internal=True)
    except Exception as exc:
        outcome: BaseException | None = exc
    else:
        outcome = None
    finally:
        heartbeat.stop()
    mine = Job.objects.filter(pk=job.pk, state=JobState.IN_PROGRESS, attempts=attempt)
    with transaction.atomic():
        if not mine.select_for_update().exists():
            logger.warning(
                "job outcome discarded job=%d function=%s: its lease ran out before it finished",
                job.pk,
                definition.name,
            )
            return None
        if outcome is not None:
            return _record_failure(job.pk, attempt, definition, outcome)
        return _record_success(job.pk, result)


def _record_success(pk: int, result: Any) -> str:
    Job.objects.filter(pk=pk).update(
        state=JobState.SUCCESS,
        result=_result_json(result),
        error="",
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    logger.info("job finished job=%d state=success", pk)
    return JobState.SUCCESS


def _record_failure(
    pk: int,
    attempts: int,
    definition: AnyDefinition | None,
    error: BaseException | None,
    reason: str | None = None,
) -> str:
    """Mark job ``pk`` failed, or pending again when its retry policy says so (in the current
    transaction)."""
    now = timezone.now()
    message = reason or f"{type(error).__name__}: {error}"
    again = retries.next_run(definition, attempts, error, now)
    if again is not None:
        Job.objects.filter(pk=pk).update(
            state=JobState.PENDING,
            attempts=attempts,
            due_at=again,
            error=message,
            lease_expires_at=None,
            dispatched_at=None,
        )
        logger.warning("job retry job=%d attempt=%d due=%s", pk, attempts, again.isoformat())
        return JobState.PENDING
    Job.objects.filter(pk=pk).update(
        state=JobState.FAILED,
        attempts=attempts,
        error=message,
        finished_at=now,
        lease_expires_at=None,
    )
    if error is not None and not isinstance(error, DatabaseError):
        logger.warning("job failed job=%d error=%s", pk, type(error).__name__, exc_info=error)
    else:
        logger.warning("job failed job=%d reason=%s", pk, message)
    return JobState.FAILED


def record_lost(job: Job, now: datetime.datetime) -> str:
    """End an action whose lease ran out: failed, or pending again under a retry policy."""
    try:
        definition: AnyDefinition | None = registry.get(job.function, internal=True)
    except FunctionNotFound:
        definition = None
    since = job.started_at.isoformat() if job.started_at else "?"
    reason = (
        f"The worker running this action ({job.worker or 'unknown'}) stopped renewing its lease "
        f"(started {since}, lease expired {job.lease_expires_at}); it probably died. Actions run "
        "at most once, so it was not run again (add @retry to the function to re-run it)."
    )
    return _record_failure(job.pk, job.attempts, definition, None, reason=reason)


def _fail_missing(job: Job) -> str | None:
    reason = (
        f"No function named '{job.function}' is registered any more; it was renamed or removed "
        "after this job was scheduled."
    )
    updated = Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
        state=JobState.FAILED, error=reason, finished_at=timezone.now()
    )
    logger.warning("job failed job=%d reason=missing function=%s", job.pk, job.function)
    return JobState.FAILED if updated else None


def _result_json(result: Any) -> Any:
    try:
        return storable(result)
    except Exception:
        return None


class _Heartbeat:
    """Renews an action's lease every third of its length, from its own thread and connection,
    until stopped or until the job is no longer this attempt's."""

    def __init__(self, pk: int, attempt: int, lease: float) -> None:
        self._pk, self._attempt, self._lease = pk, attempt, lease
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reactive-lease-{pk}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self._lease / 3):
                renewed = Job.objects.filter(
                    pk=self._pk, state=JobState.IN_PROGRESS, attempts=self._attempt
                ).update(lease_expires_at=timezone.now() + datetime.timedelta(seconds=self._lease))
                if not renewed:
                    return
        except Exception:
            logger.warning("job lease renewal failed job=%d", self._pk, exc_info=True)
        finally:
            connections.close_all()
