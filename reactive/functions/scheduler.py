"""``ctx.scheduler``: schedule mutations and actions as jobs, written in the caller's transaction
and handed to Celery once it commits.

A job exists iff the transaction that scheduled it committed: the row is written in that
transaction, and its Celery task is sent from ``transaction.on_commit``, whose callbacks Django
discards with a rolled-back (or retried) attempt. A task that never reaches the broker is sent
later by the sweeper (:mod:`reactive.scheduling.sweeper`). Jobs run with no user identity, as
in Convex.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from reactive import values
from reactive.conf import reactive_settings
from reactive.exceptions import (
    FunctionNotFound,
    ReactiveError,
    ScheduledArgumentError,
    SchedulingError,
    SchedulingLimitError,
)
from reactive.functions.convert import to_value
from reactive.functions.definitions import AnyDefinition, FunctionDefinition, FunctionRef
from reactive.functions.registry import Registry, registry
from reactive.functions.transaction import Scope, current_scope, in_thread, run_serializable, scope
from reactive.types import FunctionKind

if TYPE_CHECKING:
    from reactive.models import Job

logger = logging.getLogger(__name__)

T = TypeVar("T")

RUN_JOB_TASK = "reactive.run_job"
# A publish that fails (broker down) is retried briefly, then left to the sweeper: the
# transaction has committed, so the caller must not wait on the broker.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.2}

_running_job: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "reactive_running_job", default=None
)


@contextlib.contextmanager
def running(job_id: int) -> Iterator[None]:
    """Mark code as running job ``job_id``: jobs it schedules record it as their parent."""
    token = _running_job.set(job_id)
    try:
        yield
    finally:
        _running_job.reset(token)


class Scheduler:
    """Schedules functions as jobs. ``ctx.scheduler`` in mutations and sync actions.

    Inside a mutation the job row joins the mutation's transaction (and its retries); in an
    action, or outside any function and transaction, each call commits on its own; inside a
    caller's own ``atomic()`` block it joins that. Usable from views and commands as
    ``reactive.functions.scheduler.scheduler``. Not for queries: they only read.
    """

    def __init__(self, functions: Registry = registry) -> None:
        self.functions = functions

    def run_after(self, delay: float, fn: FunctionRef, /, **args: Any) -> str:
        """Run ``fn(**args)`` ``delay`` seconds from now; return the job id.

        Raises SchedulingError for an unknown function or a query, a negative or non-finite
        delay; ScheduledArgumentError when ``args`` do not fit the signature;
        SchedulingLimitError past ``SCHEDULER_MAX_JOBS_PER_TRANSACTION`` or
        ``SCHEDULER_MAX_ARGS_BYTES``.
        """
        if not _is_seconds(delay):
            raise SchedulingError(f"run_after needs a delay in seconds >= 0, not {delay!r}.")
        due = timezone.now() + datetime.timedelta(seconds=delay)
        return self._schedule(due, fn, args)

    def run_at(self, when: datetime.datetime, fn: FunctionRef, /, **args: Any) -> str:
        """Run ``fn(**args)`` at ``when`` (an aware datetime; past times run at once).

        Raises as ``run_after`` does, and SchedulingError for a naive datetime.
        """
        if not isinstance(when, datetime.datetime) or timezone.is_naive(when):
            raise SchedulingError(
                f"run_at needs a timezone-aware datetime, not {when!r}; use "
                "django.utils.timezone.now() + timedelta(...) or datetime(..., tzinfo=UTC)."
            )
        return self._schedule(when, fn, args)

    def cancel(self, job_id: str | int) -> bool:
        """Cancel a pending job; return whether it was pending (and now is canceled).

        A job that is running is left to finish; a finished or unknown job is left alone. In a
        mutation the cancel is part of its transaction. Raises SchedulingError for an id that
        is not a job id at all.
        """
        pk = parse_job_id(job_id)
        return self._in_transaction(lambda: cancel_pending([pk]) == 1)

    def _schedule(self, due: datetime.datetime, fn: FunctionRef, args: Mapping[str, Any]) -> str:
        definition, stored = prepare(self.functions, fn, args)
        return self._in_transaction(lambda: str(_create(definition, stored, due).pk))

    def _in_transaction(self, write: Callable[[], T]) -> T:
        current = current_scope()
        if current is Scope.QUERY:
            raise SchedulingError("A query cannot schedule or cancel jobs; queries only read.")
        if current is Scope.MUTATION or (
            current is None and connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return write()
        return run_serializable(lambda attempt: write(), function="scheduler")


class AsyncScheduler:
    """``ctx.scheduler`` in ``async def`` actions: ``Scheduler`` with awaitable methods."""

    def __init__(self, sync: Scheduler | None = None) -> None:
        self.sync = sync or Scheduler()

    async def run_after(self, delay: float, fn: FunctionRef, /, **args: Any) -> str:
        return await in_thread(self.sync.run_after, delay, fn, **args)

    async def run_at(self, when: datetime.datetime, fn: FunctionRef, /, **args: Any) -> str:
        return await in_thread(self.sync.run_at, when, fn, **args)

    async def cancel(self, job_id: str | int) -> bool:
        return await in_thread(self.sync.cancel, job_id)


def prepare(
    functions: Registry, fn: FunctionRef, args: Mapping[str, Any]
) -> tuple[AnyDefinition, Any]:
    """Resolve ``fn`` and validate ``args`` against it; return it and the args to store.

    Public and internal functions alike; only mutations and actions. Raises as
    ``Scheduler.run_after`` does.
    """
    definition = resolve(functions, fn)
    try:
        converted = to_value(dict(args), root="args")
        encoded = values.encode(converted, root="args")
    except ReactiveError as exc:
        raise ScheduledArgumentError(definition.name, [("", str(exc))]) from exc
    stored = storable(converted)
    size = len(json.dumps(encoded, separators=(",", ":")).encode())
    limit = reactive_settings().SCHEDULER_MAX_ARGS_BYTES
    if size > limit:
        raise SchedulingLimitError(
            f"Cannot schedule '{definition.name}': its arguments take {size} bytes, more than "
            f"REACTIVE['SCHEDULER_MAX_ARGS_BYTES'] ({limit}). Store large data in a table and "
            "pass its id.",
            function=definition.name,
            setting="SCHEDULER_MAX_ARGS_BYTES",
            limit=limit,
            actual=size,
        )
    _, problems = definition.arguments.validate(decode_args(stored))
    if problems:
        raise ScheduledArgumentError(definition.name, problems)
    return definition, stored


def decode_args(stored: Any) -> dict[str, Any]:
    """The arguments stored on a job, as the function receives them."""
    decoded = values.decode(stored, root="args")
    if not isinstance(decoded, dict):
        raise SchedulingError(f"Job arguments must be an object, not {type(decoded).__name__}.")
    return decoded


def resolve(functions: Registry, fn: FunctionRef) -> AnyDefinition:
    """The registered mutation or action ``fn`` names; SchedulingError otherwise."""
    name = fn.name if isinstance(fn, FunctionDefinition) else fn
    try:
        definition = functions.get(name, internal=True)
    except FunctionNotFound:
        raise SchedulingError(
            f"Cannot schedule '{str(name)[:200]}': no function of that name is registered "
            "(functions live in <app>/functions.py; names look like 'app:function').",
            function=str(name)[:200],
        ) from None
    if isinstance(fn, FunctionDefinition) and definition is not fn:
        raise SchedulingError(f"Cannot schedule {fn!r}: it is not the registered '{name}'.")
    if definition.kind is FunctionKind.QUERY:
        raise SchedulingError(
            f"Cannot schedule query '{definition.name}': only mutations and actions can be "
            "scheduled.",
            function=definition.name,
        )
    return definition


def parse_job_id(job_id: str | int) -> int:
    try:
        pk = int(job_id)
    except (TypeError, ValueError):
        pk = -1
    if isinstance(job_id, bool) or pk < 1:
        raise SchedulingError(f"{str(job_id)[:100]!r} is not a job id (job ids look like '42').")
    return pk


def cancel_pending(pks: list[int]) -> int:
    """Cancel those of ``pks`` that are pending, in the current transaction; return how many."""
    from reactive.models import Job, JobState

    return (
        Job.objects.using(DEFAULT_DB_ALIAS)
        .filter(pk__in=pks, state=JobState.PENDING)
        .update(state=JobState.CANCELED, finished_at=timezone.now(), dispatched_at=None)
    )


def send(job_id: int, due: datetime.datetime, now: datetime.datetime) -> None:
    """Send the Celery task that runs job ``job_id`` (with an ETA when it is not yet due).

    Raises whatever the broker client raises when the broker cannot be reached.
    """
    from celery import current_app  # imported here: `import reactive` must stay light

    queue = reactive_settings().SCHEDULER_QUEUE
    current_app.send_task(
        RUN_JOB_TASK,
        args=[job_id],
        eta=due if due > now else None,
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        **({"queue": queue} if queue else {}),
    )


def _create(definition: AnyDefinition, stored: Any, due: datetime.datetime) -> Job:
    from reactive.models import Job

    batch = _Dispatch.for_transaction()
    limit = reactive_settings().SCHEDULER_MAX_JOBS_PER_TRANSACTION
    if len(batch.jobs) >= limit:
        raise SchedulingLimitError(
            f"Cannot schedule '{definition.name}': this transaction already scheduled {limit} "
            "jobs, the most REACTIVE['SCHEDULER_MAX_JOBS_PER_TRANSACTION'] allows. Schedule one "
            "job that fans out in batches.",
            function=definition.name,
            setting="SCHEDULER_MAX_JOBS_PER_TRANSACTION",
            limit=limit,
            actual=limit + 1,
        )
    now = timezone.now()
    soon = due <= now + datetime.timedelta(seconds=reactive_settings().SCHEDULER_ETA_HORIZON)
    job = Job.objects.using(DEFAULT_DB_ALIAS).create(
        function=definition.name,
        args=stored,
        due_at=due,
        dispatched_at=now if soon else None,
        parent_id=_running_job.get(),
    )
    batch.jobs.append((job.pk, due, soon))
    return job


class _Dispatch:
    """The jobs one transaction scheduled; called by ``on_commit`` to send their tasks."""

    def __init__(self) -> None:
        self.jobs: list[tuple[int, datetime.datetime, bool]] = []

    @classmethod
    def for_transaction(cls) -> _Dispatch:
        """This transaction's batch, registered with ``on_commit`` on first use.

        Found among the connection's pending commit callbacks, so a batch dropped by a
        rollback (of the transaction, or of the savepoint that registered it) is never reused.
        """
        connection = connections[DEFAULT_DB_ALIAS]
        for entry in reversed(connection.run_on_commit):
            if isinstance(entry[1], cls):
                return entry[1]
        batch = cls()
        connection.on_commit(batch)
        return batch

    def __call__(self) -> None:
        now = timezone.now()
        pending = [(pk, due) for pk, due, soon in self.jobs if soon]
        for index, (pk, due) in enumerate(pending):
            try:
                send(pk, due, now)
            except Exception:
                unsent = [job for job, _ in pending[index:]]
                logger.warning(
                    "job dispatch failed jobs=%d first=%d; the sweeper will send them",
                    len(unsent),
                    unsent[0],
                    exc_info=True,
                )
                self._leave_to_sweeper(unsent)
                return

    def _leave_to_sweeper(self, pks: list[int]) -> None:
        from reactive.models import Job, JobState

        try:
            # Runs after commit; in an action the write guard is active again, so say this is
            # the scheduler's own write.
            with scope(Scope.MUTATION):
                Job.objects.using(DEFAULT_DB_ALIAS).filter(
                    pk__in=pks, state=JobState.PENDING
                ).update(dispatched_at=None)
        except Exception:
            logger.warning("job dispatch reset failed jobs=%d", len(pks), exc_info=True)


def _is_seconds(delay: object) -> bool:
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        return False
    return math.isfinite(delay) and delay >= 0


def storable(value: Any) -> Any:
    """A Convex value as JSON for a job's ``args``/``result``: ints stay ints (``values.encode``
    would make them floats); bytes, Int64, big ints and special floats take their ``$`` form.
    ``decode_args``/``values.decode`` read it back unchanged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and abs(value) <= values.MAX_SAFE_INTEGER:
        return value
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {key: storable(item) for key, item in value.items()}
    return values.encode(value)


scheduler = Scheduler()
"""The default scheduler, for code outside functions (views, commands, the admin)."""
