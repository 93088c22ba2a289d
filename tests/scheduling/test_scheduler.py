"""Scheduled jobs against a real Celery worker on real Redis and Postgres: transactional
scheduling, exactly-once mutations, at-most-once actions, lost tasks and dead workers."""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from celery import Celery
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client, override_settings
from django.utils import timezone

from reactive import FunctionError
from reactive.exceptions import (
    DefinitionError,
    ScheduledArgumentError,
    SchedulingError,
    SchedulingLimitError,
)
from reactive.functions.runtime import Call, runtime
from reactive.functions.scheduler import RUN_JOB_TASK, Scheduler
from reactive.models import Job, JobCommit, JobState
from reactive.scheduling import runner, sweeper
from reactive.scheduling.retry import retry
from reactive.types import Identity
from tests.support import servers
from tests.support.fixtures_celery import CeleryProcess
from tests.support.waiting import wait_for
from tests.testapp.functions import jobs as testjobs
from tests.testapp.models import Account, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def schedule(body: str, **options: Any) -> int:
    return int(runtime.run("testapp/jobs:schedule_note", {"body": body, **options}))


def schedule_by_name(name: str, **args: Any) -> int:
    return int(runtime.run("testapp/jobs:schedule_by_name", {"name": name, "args": args}))


def notes(body: str) -> int:
    return Note.objects.filter(body=body).count()


def job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def finished(pk: int) -> Job | None:
    found = Job.objects.get(pk=pk)
    return found if found.is_finished else None


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a thread with its own database connection; its result or error lands in
    the returned list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def test_run_after_sends_the_job_after_commit(worker: CeleryProcess) -> None:
    # Given a mutation that schedules a job and then holds its transaction open
    testjobs.HELD.clear()
    testjobs.RELEASE.clear()
    since = worker.log_size()
    thread, out = in_thread(lambda: schedule("after commit", hold=True))
    assert testjobs.HELD.wait(10), "the mutation did not schedule"
    # When the job row is written but not committed, no task has been sent: a send is
    # synchronous, so one made at schedule time would be in the broker or the worker by now,
    # and counted below (one task in all: the send after commit)
    assert not Job.objects.exists()
    assert worker.received(since) == 0
    released = timezone.now()
    testjobs.RELEASE.set()
    thread.join(10)
    # Then the job runs, after the commit
    [pk] = out
    done = wait_for(lambda: finished(pk), what="job to finish")
    assert done.state == JobState.SUCCESS
    assert done.started_at is not None and done.started_at >= released
    assert notes("after commit") == 1
    assert worker.received(since) == 1
    assert runtime.run("testapp/jobs:job_status", {"id": str(pk)})["state"] == "success"


def test_rolled_back_mutation_leaves_no_job(worker: CeleryProcess) -> None:
    # When a mutation schedules a job and then fails
    since = worker.log_size()
    with pytest.raises(FunctionError):
        runtime.run("testapp/jobs:schedule_then_fail", {"body": "rolled back"})
    # Then no job exists, and a later job runs with nothing before it
    assert not Job.objects.exists()
    barrier = schedule("barrier")
    wait_for(lambda: finished(barrier), what="barrier job")
    assert notes("rolled back") == 0
    assert Job.objects.count() == 1
    assert worker.received(since) == 1  # the barrier's task only


def test_retried_mutation_attempt_leaves_exactly_one_job(
    worker: CeleryProcess, test_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given another transaction holding the row the mutation will write
    Account.objects.create(name="held", balance=0)
    caplog.set_level(logging.WARNING, logger="reactive")
    with psycopg.connect(test_database_url) as other:
        other.execute("UPDATE testapp_account SET balance = 5 WHERE name = 'held'")
        # When the mutation schedules a job, then blocks on that row
        thread, out = in_thread(
            lambda: runtime.run(
                "testapp/jobs:schedule_then_pay", {"body": "retried", "account": "held"}
            )
        )
        wait_for(lambda: _blocked_on_lock(other), what="the mutation to wait for the row lock")
        other.commit()  # its first attempt now fails to serialize and runs again
    thread.join(20)
    # Then the retried mutation committed one job, which ran once
    [pk] = out
    assert any("mutation retry" in r.getMessage() for r in caplog.records)
    assert list(Job.objects.values_list("pk", flat=True)) == [int(pk)]
    wait_for(lambda: finished(int(pk)), what="job to finish")
    assert notes("retried") == 1


def _blocked_on_lock(conn: psycopg.Connection[Any]) -> bool:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    with psycopg.connect(conn.info.dsn, autocommit=True) as probe:
        row = probe.execute(query).fetchone()
    return bool(row and row[0])


def test_duplicate_deliveries_run_a_mutation_once(
    worker: CeleryProcess, celery_app: Celery
) -> None:
    # Given a job whose task is delivered three times
    pk = schedule("once")
    celery_app.send_task(RUN_JOB_TASK, args=[pk])
    celery_app.send_task(RUN_JOB_TASK, args=[pk])
    # When the worker has handled all three (a later job runs after them)
    barrier = schedule("barrier")
    wait_for(lambda: finished(barrier), what="barrier job")
    # Then the mutation ran once
    assert notes("once") == 1
    assert job(pk).state == JobState.SUCCESS
    assert job(pk).attempts == 1


def test_concurrent_deliveries_run_a_mutation_once() -> None:
    # Given a due job that no task was sent for (two threads deliver it at the same moment)
    later = timezone.now() + datetime.timedelta(hours=1)
    pk = int(Scheduler().run_at(later, "testapp/jobs:slow_note", body="concurrent", seconds=0.5))
    Job.objects.filter(pk=pk).update(due_at=timezone.now())
    start = threading.Barrier(2)

    def deliver() -> str | None:
        start.wait()
        return runner.run_job(pk)

    threads = [in_thread(deliver) for _ in range(2)]
    for thread, _ in threads:
        thread.join(20)
    # Then exactly one delivery ran it
    outcomes = sorted(str(out[0]) for _, out in threads)
    assert outcomes == ["None", "success"]
    assert notes("concurrent") == 1


def test_failed_job_records_its_error_and_rolls_back(worker: CeleryProcess) -> None:
    pk = schedule_by_name("testapp/jobs:fail_after_write", body="undone")
    done = wait_for(lambda: finished(pk), what="job to fail")
    assert done.state == JobState.FAILED
    assert "NOPE" in done.error
    assert done.attempts == 1
    assert notes("undone") == 0


def test_job_scheduled_by_a_job_runs(worker: CeleryProcess) -> None:
    first = schedule_by_name("testapp/jobs:chain", tag="chain", n=3)
    wait_for(lambda: notes("chain 0"), what="the last job of the chain")
    chain = list(Job.objects.order_by("pk"))
    assert [j.state for j in chain] == [JobState.SUCCESS] * 4
    assert [j.parent_id for j in chain] == [None, first, chain[1].pk, chain[2].pk]


def test_actions_schedule_jobs(worker: CeleryProcess) -> None:
    async_pk = runtime.run("testapp/jobs:schedule_from_async_action", {"body": "from async"})
    sync_pk = runtime.run("testapp/jobs:schedule_from_sync_action", {"body": "from sync"})
    for pk in (async_pk, sync_pk):
        assert wait_for(lambda pk=pk: finished(int(pk))).state == JobState.SUCCESS
    assert notes("from async") == notes("from sync") == 1


def test_cancel_prevents_a_pending_job(worker: CeleryProcess) -> None:
    # Given a job due in a second, canceled before then
    pk = schedule("canceled", delay=1.0)
    assert runtime.run("testapp/jobs:cancel_job", {"id": str(pk)}) is True
    assert runtime.run("testapp/jobs:cancel_job", {"id": str(pk)}) is False
    # When a job due after it has run
    barrier = schedule("barrier", delay=1.5)
    wait_for(lambda: finished(barrier), what="barrier job")
    # Then the canceled one never ran
    assert job(pk).state == JobState.CANCELED
    assert notes("canceled") == 0


def test_cancel_lets_a_running_action_finish(worker: CeleryProcess) -> None:
    pk = schedule_by_name("testapp/jobs:wait_for_go", marker="running")
    wait_for(lambda: notes("running started"), what="action to start")
    assert job(pk).state == JobState.IN_PROGRESS
    assert runtime.run("testapp/jobs:cancel_job", {"id": str(pk)}) is False
    Note.objects.create(body="running go")
    done = wait_for(lambda: finished(pk), what="action to finish")
    assert done.state == JobState.SUCCESS
    assert done.result == "finished"


def test_worker_killed_during_action_leaves_job_failed(worker: CeleryProcess) -> None:
    # Given an action running on the worker
    pk = schedule_by_name("testapp/jobs:hang", marker="killed")
    wait_for(lambda: notes("killed started"), what="action to start")
    # When the worker dies without a word
    worker.kill()
    # Then the sweeper finds the lease expired and fails the job, without running it again

    def swept() -> Job | None:
        sweeper.sweep()
        return finished(pk)

    done = wait_for(swept, timeout=20, interval=0.2, what="the sweeper to fail the job")
    assert done.state == JobState.FAILED
    assert "stopped renewing its lease" in done.error
    assert done.attempts == 1
    worker.start()
    barrier = schedule("barrier")
    wait_for(lambda: finished(barrier), what="barrier job")
    assert notes("killed started") == 1


def test_retry_policy_reruns_an_action_whose_worker_died(worker: CeleryProcess) -> None:
    pk = schedule_by_name("testapp/jobs:hang_once", marker="retried")
    wait_for(lambda: notes("retried started"), what="action to start")
    worker.kill()

    def requeued() -> bool:
        sweeper.sweep()
        return job(pk).state == JobState.PENDING

    wait_for(requeued, timeout=20, interval=0.2, what="the sweeper to re-queue the job")
    assert "stopped renewing its lease" in job(pk).error
    worker.start()
    sweeper.sweep()  # sends the re-queued job
    done = wait_for(lambda: finished(pk), what="second run")
    assert done.state == JobState.SUCCESS
    assert done.attempts == 2
    assert notes("retried done") == 1


def test_job_committed_while_redis_is_down_runs_once_it_is_back(
    make_celery: Callable[..., CeleryProcess], celery_app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker and the app on a Redis of their own
    redis = servers.RedisServer(servers.scratch_dir("reactive-redis-down-") / "data", fast=True)
    redis.start()
    dedicated = Celery("dedicated")
    dedicated.config_from_object("django.conf:settings", namespace="CELERY")
    dedicated.conf.broker_url = redis.url
    dedicated.set_current()
    try:
        make_celery("worker", redis.url, name="dedicated").start()
        # When Redis is down as the mutation commits
        redis.stop()
        pk = schedule("while down")
        assert job(pk).state == JobState.PENDING
        assert any("job dispatch failed" in r.getMessage() for r in caplog.records)
        # Then once Redis is back, the sweeper sends it and it runs
        redis.start()

        def ran() -> Job | None:
            sweeper.sweep()
            return finished(pk)

        done = wait_for(ran, timeout=60, interval=0.5, what="the job to run after Redis returned")
        assert done.state == JobState.SUCCESS
        assert notes("while down") == 1
    finally:
        celery_app.set_current()
        redis.stop()


@pytest.mark.parametrize(
    ("name", "args", "error", "message"),
    [
        ("testapp/jobs:nope", {}, SchedulingError, "no function of that name"),
        ("testapp/jobs:has_note", {"body": "x"}, SchedulingError, "only mutations and actions"),
        ("testapp/jobs:write_note", {"body": 5}, ScheduledArgumentError, "body"),
        ("testapp/jobs:write_note", {}, ScheduledArgumentError, "body: Field required"),
        ("testapp/jobs:write_note", {"body": "x", "extra": 1}, ScheduledArgumentError, "extra"),
    ],
)
def test_bad_schedule_is_refused_when_scheduling(
    name: str, args: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        schedule_by_name(name, **args)
    assert not Job.objects.exists()


def test_limits_give_clear_errors() -> None:
    limits = {"SCHEDULER_MAX_ARGS_BYTES": 1000, "SCHEDULER_MAX_JOBS_PER_TRANSACTION": 3}
    with override_settings(REACTIVE={**_reactive(), **limits}):
        with pytest.raises(SchedulingLimitError, match="SCHEDULER_MAX_ARGS_BYTES") as big:
            runtime.run("testapp/jobs:schedule_payload", {"size": 2000})
        assert big.value.limit == 1000 and big.value.actual > 2000
        with pytest.raises(SchedulingLimitError, match="SCHEDULER_MAX_JOBS_PER_TRANSACTION"):
            runtime.run("testapp/jobs:schedule_many", {"n": 4})
        assert not Job.objects.exists()  # the mutation rolled back with its three jobs
        outcome = runtime.call(Call("testapp/jobs:schedule_many", {"n": 4}))
        assert outcome.code == "SchedulingLimitExceeded"
        assert len(runtime.run("testapp/jobs:schedule_many", {"n": 3})) == 3


def test_scheduler_refuses_bad_times_and_ids() -> None:
    scheduler = Scheduler()
    with pytest.raises(SchedulingError, match="delay in seconds"):
        scheduler.run_after(-1, "testapp/jobs:write_note", body="x")
    with pytest.raises(SchedulingError, match="timezone-aware"):
        scheduler.run_at(datetime.datetime(2030, 1, 1), "testapp/jobs:write_note", body="x")
    with pytest.raises(SchedulingError, match="not a job id"):
        scheduler.cancel("abc")
    assert scheduler.cancel("999999") is False


def test_scheduler_outside_functions_commits_on_its_own() -> None:
    when = timezone.now() + datetime.timedelta(hours=2)
    pk = Scheduler().run_at(when, "testapp/jobs:write_note", body=f"later {uuid.uuid4()}")
    stored = job(int(pk))
    assert stored.state == JobState.PENDING
    assert stored.dispatched_at is None  # beyond the ETA horizon: the sweeper sends it later
    assert stored.args["body"].startswith("later")


def _reactive() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.REACTIVE)


def test_admin_lists_jobs_and_cancels_pending_ones(admin_client: Client) -> None:
    # Given a pending job and a finished one
    later = timezone.now() + datetime.timedelta(hours=1)
    pending = int(Scheduler().run_at(later, "testapp/jobs:write_note", body="from admin"))
    done = Job.objects.create(
        function="testapp/jobs:write_note", due_at=timezone.now(), state=JobState.SUCCESS
    )
    listing = admin_client.get("/admin/reactive/job/?state__exact=pending&q=write_note")
    assert listing.status_code == 200
    assert "testapp/jobs:write_note" in listing.content.decode()
    # When an admin cancels both from the list
    response = admin_client.post(
        "/admin/reactive/job/",
        {"action": "cancel_jobs", "_selected_action": [pending, done.pk]},
        follow=True,
    )
    # Then the pending one is canceled and the finished one left alone, as the page says
    page = response.content.decode()
    assert "Canceled 1 pending job(s)." in page
    assert "1 job(s) were not pending" in page
    assert job(pending).state == JobState.CANCELED
    assert job(done.pk).state == JobState.SUCCESS


def _lost(pk: int) -> None:
    """Make job ``pk`` look claimed by a worker that died: in progress, lease run out."""
    expired = timezone.now() - datetime.timedelta(seconds=1)
    Job.objects.filter(pk=pk).update(
        state=JobState.IN_PROGRESS, attempts=1, lease_expires_at=expired, worker="gone:1"
    )


def test_mutation_lost_before_commit_runs_again_once(worker: CeleryProcess) -> None:
    # Given a mutation job whose worker died before the mutation committed
    later = timezone.now() + datetime.timedelta(hours=1)
    pk = int(Scheduler().run_at(later, "testapp/jobs:write_note", body="lost early"))
    Job.objects.filter(pk=pk).update(due_at=timezone.now())
    _lost(pk)
    # When the sweeper finds it
    assert sweeper.sweep().lost == 1
    # Then it runs again, once: nothing of the first run had committed
    done = wait_for(lambda: finished(pk), what="the re-queued mutation")
    assert (done.state, done.attempts) == (JobState.SUCCESS, 2)
    assert notes("lost early") == 1


def test_mutation_lost_after_commit_is_recorded_not_rerun() -> None:
    # Given a mutation job that committed, whose worker died before recording the outcome
    later = timezone.now() + datetime.timedelta(hours=1)
    pk = int(Scheduler().run_at(later, "testapp/jobs:write_note", body="lost late"))
    _lost(pk)
    JobCommit.objects.create(job_id=pk, result="42")
    # When the sweeper finds it, it records the committed outcome
    sweeper.sweep()
    done = job(pk)
    assert (done.state, done.result, done.attempts) == (JobState.SUCCESS, "42", 1)
    # And another delivery does not run it again
    assert runner.run_job(pk) is None
    assert notes("lost late") == 0


def test_jobs_run_with_no_user_identity(worker: CeleryProcess) -> None:
    # Given a signed-in user whose mutation schedules a job
    user = User.objects.create_user("ada")
    pk = runtime.run(
        "testapp/jobs:schedule_note_caller", {"tag": "who"}, Identity(user_id=str(user.pk))
    )
    # Then the mutation itself saw the user, and the job ran as nobody
    wait_for(lambda: finished(int(pk)), what="job to finish")
    bodies = set(Note.objects.values_list("body", flat=True))
    assert any(body.startswith("who direct user=ada") for body in bodies)
    assert "who scheduled user=None identity=None" in bodies


def test_retry_is_checked_where_it_is_applied() -> None:
    with pytest.raises(DefinitionError, match="above @mutation/@action"):
        retry()(lambda ctx: None)  # type: ignore[type-var]
    with pytest.raises(DefinitionError, match="not query"):
        retry()(testjobs.has_note)
    with pytest.raises(DefinitionError, match="max_attempts >= 1"):
        retry(max_attempts=0)


def test_job_beyond_the_eta_horizon_is_sent_by_the_sweeper(worker: CeleryProcess) -> None:
    # Given a job due beyond SCHEDULER_ETA_HORIZON: no task was sent at commit
    with override_settings(REACTIVE={**_reactive(), "SCHEDULER_ETA_HORIZON": 1.0}):
        since = worker.log_size()
        pk = schedule("far", delay=1.5)
        assert job(pk).dispatched_at is None
        # When it comes within the horizon, a sweep sends it (with its ETA)
        wait_for(lambda: sweeper.sweep().sent == 1, what="the sweep to send it")
    done = wait_for(lambda: finished(pk), what="the job to run")
    assert done.started_at is not None and done.started_at >= done.due_at
    assert worker.received(since) == 1
