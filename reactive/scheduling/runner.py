"""Running one scheduled job: claim it, run its function with no identity, record the outcome.

Every job is first claimed (pending → in progress, attempt n, a lease) in a short transaction:
of concurrent deliveries only one claims it, and a heartbeat thread renews the lease while the
function runs. A mutation then runs in its own SERIALIZABLE transaction that also inserts the
job's ``JobCommit``; that row makes it exactly once (a second commit for the same job is
impossible) while leaving the job table unread there, so concurrent jobs do not conflict.
An action runs at most once: once claimed it is never run again, unless a retry policy says so.
Whoever loses its lease (a dead worker) is dealt with by the sweeper (:func:`recover`).
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.exceptions import FunctionNotFound
from reactive.functions import logs
from reactive.functions.definitions import AnyDefinition
from reactive.functions.registry import registry
from reactive.functions.runtime import Runtime, runtime
from reactive.functions.scheduler import decode_args, running, send, storable
from reactive.functions.transaction import run_serializable
from reactive.models import Job, JobCommit, JobState
from reactive.scheduling import retry
from reactive.types import ANONYMOUS, FunctionKind

logger = logging.getLogger(__name__)


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
    job = _claim(job_id)
    if job is None:
        _resend_if_early(job_id)
        return None
    logger.info("job started job=%d function=%s attempt=%d", job.pk, job.function, job.attempts)
    try:
        definition = runner.functions.get(job.function, internal=True)
    except FunctionNotFound:
        reason = (
            f"No function named '{job.function}' is registered any more; it was renamed or "
            "removed after this job was scheduled."
        )
        return _settle(job, None, None, reason)
    heartbeat = _Heartbeat(job.pk, job.attempts)
    heartbeat.start()
    try:
        with running(job.pk):
            if definition.kind is FunctionKind.MUTATION:
                return _run_mutation(job, definition, runner)
            return _run_action(job, definition, runner)
    finally:
        heartbeat.stop()


def _claim(pk: int) -> Job | None:
    """Take a pending, due job for this worker (attempt + 1, a fresh lease), or None.

    One ``UPDATE ... RETURNING`` in autocommit: of concurrent claims, Postgres lets exactly one
    match ``state = 'pending'`` (the others wait for its row lock, then re-check and miss).
    """
    now = timezone.now()
    lease = datetime.timedelta(seconds=reactive_settings().SCHEDULER_LEASE)
    claimed = list(
        Job.objects.raw(
            f"UPDATE {Job._meta.db_table} SET state = %s, attempts = attempts + 1, "
            "started_at = %s, lease_expires_at = %s, worker = %s "
            "WHERE id = %s AND state = %s AND due_at <= %s "
            "RETURNING id, function, args, attempts, started_at",
            [JobState.IN_PROGRESS, now, now + lease, worker_name(), pk, JobState.PENDING,
             now + EARLY_TOLERANCE],
        )
    )  # fmt: skip
    return claimed[0] if claimed else None


def _resend_if_early(pk: int) -> None:
    """A task that arrived before its job is due goes back to the broker to wait."""
    now = timezone.now()
    early = Job.objects.filter(pk=pk, state=JobState.PENDING, due_at__gt=now + EARLY_TOLERANCE)
    due = early.values_list("due_at", flat=True).first()
    if due is not None:
        send(pk, due, now)
    else:
        logger.debug("job skipped job=%d: not pending", pk)


def _run_mutation(job: Job, definition: AnyDefinition, runner: Runtime) -> str | None:
    args = decode_args(job.args)

    def attempt(number: int) -> Any:
        result = runner.run(definition, args, ANONYMOUS, internal=True)
        JobCommit.objects.create(job_id=job.pk, result=storable(result))
        return result

    try:
        with logs.reported(definition.name, ANONYMOUS, args):
            result = run_serializable(attempt, function=definition.name)
    except IntegrityError:
        # Another run of this job committed first (it outlived its lease): ours rolled back.
        logger.warning("job already committed job=%d; this run rolled back", job.pk)
        return None
    except Exception as exc:  # rolled back; recorded on the job
        return _settle(job, definition, exc)
    return _record_success(job, result)


def _run_action(job: Job, definition: AnyDefinition, runner: Runtime) -> str | None:
    try:
        args = decode_args(job.args)
        with logs.reported(definition.name, ANONYMOUS, args):
            result = runner.run(definition, args, ANONYMOUS, internal=True)
    except Exception as exc:  # recorded on the job
        return _settle(job, definition, exc)
    return _record_success(job, result)


def _mine(job: Job) -> Any:
    """The job's row while it is still this run's claim (the sweeper may have taken it)."""
    return Job.objects.filter(pk=job.pk, state=JobState.IN_PROGRESS, attempts=job.attempts)


def _settle(
    job: Job, definition: AnyDefinition | None, error: BaseException | None, reason: str = ""
) -> str | None:
    with transaction.atomic():
        if not _mine(job).select_for_update().exists():
            logger.warning("job outcome discarded job=%d: its lease ran out first", job.pk)
            return None
        return _record_failure(job.pk, job.attempts, definition, error, reason or None)


def _record_success(job: Job, result: Any) -> str | None:
    updated = _mine(job).update(
        state=JobState.SUCCESS, result=storable(result), error="",
        finished_at=timezone.now(), lease_expires_at=None,
    )  # fmt: skip
    if not updated:
        logger.warning("job outcome discarded job=%d: its lease ran out first", job.pk)
        return None
    logger.info("job finished job=%d state=success", job.pk)
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
    again = retry.next_run(definition, attempts, error, now)
    if again is not None:
        _requeue(pk, again, message)
        logger.warning("job retry job=%d attempt=%d due=%s", pk, attempts, again.isoformat())
        return JobState.PENDING
    Job.objects.filter(pk=pk).update(
        state=JobState.FAILED, error=message, finished_at=now, lease_expires_at=None
    )
    if error is not None:
        logger.warning("job failed job=%d error=%s", pk, type(error).__name__, exc_info=error)
    else:
        logger.warning("job failed job=%d reason=%s", pk, message)
    return JobState.FAILED


def _requeue(pk: int, due: datetime.datetime, message: str) -> None:
    Job.objects.filter(pk=pk).update(
        state=JobState.PENDING, due_at=due, error=message, lease_expires_at=None,
        dispatched_at=None,
    )  # fmt: skip


def recover(job: Job, now: datetime.datetime) -> str:
    """Settle a job whose lease ran out (its worker died or hung); call it with the row locked.

    A mutation that committed (its ``JobCommit`` exists) is recorded as a success; one that did
    not left no trace and is queued again, which keeps it exactly once. An action may have done
    anything, so it fails, unless its retry policy re-queues it.
    """
    commit = JobCommit.objects.filter(job_id=job.pk).first()
    if commit is not None:
        Job.objects.filter(pk=job.pk).update(
            state=JobState.SUCCESS, result=commit.result, error="", finished_at=now,
            lease_expires_at=None,
        )  # fmt: skip
        return JobState.SUCCESS
    try:
        definition: AnyDefinition | None = registry.get(job.function, internal=True)
    except FunctionNotFound:
        definition = None
    lost = (
        f"The worker running this job ({job.worker or 'unknown'}, attempt {job.attempts}, "
        f"started {job.started_at}) stopped renewing its lease, which expired at "
        f"{job.lease_expires_at}; it probably died."
    )
    if definition is not None and definition.kind is FunctionKind.MUTATION:
        _requeue(job.pk, now, f"{lost} The mutation had not committed, so it runs again.")
        return JobState.PENDING
    reason = (
        f"{lost} Actions run at most once, so it was not run again (add @retry to the "
        "function to re-run it)."
    )
    return _record_failure(job.pk, job.attempts, definition, None, reason=reason)


class _Heartbeat:
    """Renews a running job's lease every third of ``SCHEDULER_LEASE``, from its own thread
    and connection, until stopped or until the job is no longer this attempt's.

    The thread opens a database connection only if the job outlives the first third.
    """

    def __init__(self, pk: int, attempt: int) -> None:
        self._pk, self._attempt = pk, attempt
        self._lease = reactive_settings().SCHEDULER_LEASE
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
        except Exception:  # a missed renewal only risks an early expiry
            logger.warning("job lease renewal failed job=%d", self._pk, exc_info=True)
        finally:
            connections.close_all()
