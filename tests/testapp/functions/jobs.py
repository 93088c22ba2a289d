"""Functions the scheduler and cron tests schedule: `testapp/jobs:<name>`.

Jobs leave their traces as Note rows, so a test can wait for a body to appear.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from reactive import (
    ActionCtx,
    FunctionError,
    MutationCtx,
    QueryCtx,
    SyncActionCtx,
    action,
    internal_action,
    internal_mutation,
    mutation,
    query,
)
from reactive.models import Job
from reactive.scheduling.retry import retry
from tests.testapp.models import Account, Note

# `schedule_note(hold=True)` sets HELD once it has scheduled, then waits for a test to set
# RELEASE before committing; the mutation runs in a thread of the test process.
HELD = threading.Event()
RELEASE = threading.Event()


@internal_mutation
def write_note(ctx: MutationCtx, body: str) -> str:
    return str(Note.objects.create(body=body).pk)


@query
def has_note(ctx: QueryCtx, body: str) -> bool:
    return Note.objects.filter(body=body).exists()


@query
def job_status(ctx: QueryCtx, id: str) -> Any:
    job = Job.objects.filter(pk=int(id)).first()
    return job.describe() if job is not None else None


@mutation
def schedule_note(ctx: MutationCtx, body: str, delay: float = 0, hold: bool = False) -> str:
    job_id = ctx.scheduler.run_after(delay, write_note, body=body)
    if hold:
        HELD.set()
        if not RELEASE.wait(30):
            raise FunctionError("never released")
    return job_id


@mutation
def schedule_then_fail(ctx: MutationCtx, body: str) -> None:
    ctx.scheduler.run_after(0, "testapp/jobs:write_note", body=body)
    raise FunctionError({"code": "ROLLED_BACK"})


@mutation
def schedule_then_pay(ctx: MutationCtx, body: str, account: str) -> str:
    """Schedules, then writes a row another transaction may hold: a retried attempt."""
    job_id = ctx.scheduler.run_after(0, write_note, body=body)
    Account.objects.filter(name=account).update(balance=1)
    return job_id


@mutation
def schedule_many(ctx: MutationCtx, n: int) -> list[str]:
    return [ctx.scheduler.run_after(3600, write_note, body=f"many {i}") for i in range(n)]


@mutation
def schedule_payload(ctx: MutationCtx, size: int) -> str:
    return ctx.scheduler.run_after(3600, write_note, body="x" * size)


@mutation
def schedule_by_name(ctx: MutationCtx, name: str, args: dict[str, Any]) -> str:
    return ctx.scheduler.run_after(0, name, **args)


@mutation
def cancel_job(ctx: MutationCtx, id: str) -> bool:
    return ctx.scheduler.cancel(id)


@internal_mutation
def chain(ctx: MutationCtx, tag: str, n: int) -> None:
    """Writes a note and schedules itself again until n reaches 0."""
    Note.objects.create(body=f"{tag} {n}")
    if n > 0:
        ctx.scheduler.run_after(0, chain, tag=tag, n=n - 1)


@internal_mutation
def fail_after_write(ctx: MutationCtx, body: str) -> None:
    Note.objects.create(body=body)
    raise FunctionError({"code": "NOPE"})


@internal_mutation
def slow_note(ctx: MutationCtx, body: str, seconds: float) -> None:
    Note.objects.create(body=body)
    time.sleep(seconds)  # keeps the transaction open so that a duplicate overlaps it


@internal_action
def hang(ctx: SyncActionCtx, marker: str) -> None:
    ctx.run_mutation(write_note, body=f"{marker} started")
    time.sleep(120)  # until the test kills the worker


@retry(max_attempts=2, base_delay=0)
@internal_action
def hang_once(ctx: SyncActionCtx, marker: str) -> None:
    """Hangs on its first run, finishes on the second: for the retry policy."""
    if ctx.run_query(has_note, body=f"{marker} started"):
        ctx.run_mutation(write_note, body=f"{marker} done")
        return
    ctx.run_mutation(write_note, body=f"{marker} started")
    time.sleep(120)


@internal_action
def wait_for_go(ctx: SyncActionCtx, marker: str) -> str:
    ctx.run_mutation(write_note, body=f"{marker} started")
    deadline = time.monotonic() + 30
    while not ctx.run_query(has_note, body=f"{marker} go"):
        if time.monotonic() > deadline:
            raise TimeoutError("no go")
        time.sleep(0.05)
    ctx.run_mutation(write_note, body=f"{marker} done")
    return "finished"


@action
async def schedule_from_async_action(ctx: ActionCtx, body: str) -> str:
    job_id: str = await ctx.scheduler.run_after(0, write_note, body=body)
    return job_id


@action
def schedule_from_sync_action(ctx: SyncActionCtx, body: str) -> str:
    return ctx.scheduler.run_after(0, write_note, body=body)


@internal_mutation
def cron_note(ctx: MutationCtx, body: str = "cron") -> None:
    Note.objects.create(body=body)


@internal_action
def cron_slow(ctx: SyncActionCtx, seconds: float = 2.5) -> None:
    ctx.run_mutation(write_note, body="slow cron started")
    time.sleep(seconds)


@internal_mutation
def note_caller(ctx: MutationCtx, tag: str) -> None:
    user = ctx.auth.user
    Note.objects.create(
        body=f"{tag} user={user.get_username() or None} identity={ctx.auth.get_user_identity()}"
    )


@mutation
def schedule_note_caller(ctx: MutationCtx, tag: str) -> str:
    ctx.run_mutation(note_caller, tag=f"{tag} direct")
    return ctx.scheduler.run_after(0, note_caller, tag=f"{tag} scheduled")
