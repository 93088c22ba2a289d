"""@migration against real Postgres (inline) and a real Celery worker: batches in pk order,
exactly once per row across kill -9 and racing workers, rows that stop matching skipped, a
final pass for rows behind the cursor, dry runs, failures parked with the row's pk."""

from __future__ import annotations

import datetime
import os
import tempfile
import uuid
from collections.abc import Callable
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import override_settings
from django.utils import timezone

from reactive import migration
from reactive.datamigrations import runner, tasks
from reactive.exceptions import DataMigrationError, DefinitionError
from reactive.models import DataMigration, DataMigrationBatch, DataMigrationState
from tests.support.fixtures_celery import DISPATCHER_ON, CeleryProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Note, Sample

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

NAME = "testapp:fill_maybe"
AT = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def samples(count: int, *, label: str = "x", maybe: int | None = None) -> list[Sample]:
    return Sample.objects.bulk_create(
        Sample(num=i, label=label, maybe=maybe, at=AT, amount=Decimal("1.00"))
        for i in range(count)
    )


def state() -> DataMigration:
    return DataMigration.objects.get(name=NAME)


def labels() -> list[str]:
    return list(Sample.objects.order_by("pk").values_list("label", flat=True))


def test_inline_run_migrates_every_matching_row_once_in_batches() -> None:
    # Given 35 rows to migrate and 5 that do not match
    samples(35)
    samples(5, maybe=1, label="keep")
    # When it runs in this process
    out = StringIO()
    call_command("reactive_migrations", "run", NAME, "--inline", stdout=out)
    # Then each matching row was changed once, in four batches plus the final pass
    row = state()
    assert row.state == DataMigrationState.DONE
    assert (row.done, row.total, row.skipped) == (35, 35, 0)
    assert labels() == ["x+"] * 35 + ["keep"] * 5
    assert not Sample.objects.filter(maybe__isnull=True).exists()
    assert row.batches == 5  # 10+10+10+5, then an empty final pass
    assert not DataMigrationBatch.objects.exists()
    assert "testapp:fill_maybe: done" in out.getvalue()


def test_rows_that_stop_matching_are_skipped_and_rows_behind_the_cursor_get_a_final_pass(
) -> None:
    # Given 30 unmigrated rows and 10 migrated ones with lower keys
    done_before = samples(10, maybe=5, label="old")
    todo = samples(30)
    runner.start(NAME)

    def after_batch(current: DataMigration) -> None:
        if current.batches == 1:
            # Another writer, between batches: a row ahead stops matching, one behind starts
            Sample.objects.filter(pk=todo[-1].pk).update(maybe=0, label="fixed elsewhere")
            Sample.objects.filter(pk=done_before[0].pk).update(maybe=None)

    # When the migration runs
    assert runner.run(NAME, on_batch=after_batch) == DataMigrationState.DONE
    # Then the row that stopped matching was left alone and the one behind was migrated once
    by_pk = dict(Sample.objects.values_list("pk", "label"))
    assert by_pk[todo[-1].pk] == "fixed elsewhere"
    assert by_pk[done_before[0].pk] == "old+"
    assert all(by_pk[s.pk] == "x+" for s in todo[:-1])
    assert all(by_pk[s.pk] == "old" for s in done_before[1:])
    assert state().done == 30


def test_dry_run_rolls_every_batch_back_and_reports_what_would_change() -> None:
    samples(25)
    out = StringIO()
    call_command("reactive_migrations", "run", NAME, "--inline", "--dry-run", stdout=out)
    row = state()
    assert row.state == DataMigrationState.DONE and row.dry_run
    assert row.done == 25
    assert row.would_change == {"testapp_sample": 25}
    assert labels() == ["x"] * 25  # nothing changed
    assert "would change: testapp_sample=25" in out.getvalue()
    # And a real run afterwards starts afresh
    call_command("reactive_migrations", "run", NAME, "--inline", stdout=StringIO())
    assert labels() == ["x+"] * 25 and not state().dry_run


def test_a_failing_row_parks_the_migration_with_its_pk_and_run_resumes_after_a_fix() -> None:
    rows = samples(15)
    Sample.objects.filter(pk=rows[12].pk).update(label="bad")
    with pytest.raises(CommandError, match="failed"):
        call_command("reactive_migrations", "run", NAME, "--inline", stdout=StringIO())
    row = state()
    assert row.state == DataMigrationState.FAILED
    assert row.failed_pk == str(rows[12].pk)
    assert "ValueError: row" in row.error
    assert labels()[:10] == ["x+"] * 10 and labels()[10:] == ["x", "x", "bad", "x", "x"]
    out = StringIO()
    call_command("reactive_migrations", "status", NAME, stdout=out)
    assert f"failed at pk={rows[12].pk}" in out.getvalue()
    # When the data is fixed and it runs again, it resumes after the last committed batch
    Sample.objects.filter(pk=rows[12].pk).update(label="x")
    call_command("reactive_migrations", "run", NAME, "--inline", stdout=StringIO())
    assert labels() == ["x+"] * 15
    assert state().state == DataMigrationState.DONE


def test_run_on_celery_follows_progress_until_done(reacting_worker: CeleryProcess) -> None:
    samples(45)
    out = StringIO()
    call_command("reactive_migrations", "run", NAME, "--batch-size", "7", stdout=out)
    assert labels() == ["x+"] * 45
    assert state().batch_size == 7 and state().batches == 8
    assert "45/45" in out.getvalue()


def test_kill_9_mid_batch_resumes_from_the_last_committed_batch(
    reacting_worker: CeleryProcess,
) -> None:
    # Given a row in the third batch that hangs the first time it is migrated
    token = uuid.uuid4().hex[:12]
    marker = os.path.join(tempfile.gettempdir(), f"reactive-marker-{token}")
    rows = samples(40)
    Sample.objects.filter(pk=rows[25].pk).update(label=f"slow:{token}")
    runner.start(NAME)
    tasks.send(NAME)
    wait_for(lambda: os.path.exists(marker), what="the worker to reach the slow row")
    # When the worker dies mid-batch and another starts
    reacting_worker.kill()
    assert state().done == 20  # two batches committed, the third rolled back
    reacting_worker.start()
    # Then the lease runs out, the dispatcher sends it again, and no row is migrated twice
    wait_for(lambda: state().state == DataMigrationState.DONE, timeout=40, what="resumed run")
    assert labels().count("x+") == 39
    assert Sample.objects.get(pk=rows[25].pk).label == f"slow:{token}+"
    os.unlink(marker)


def test_two_workers_racing_migrate_each_row_once(
    reacting_worker: CeleryProcess, make_celery: Callable[..., CeleryProcess], redis_url: str
) -> None:
    second = make_celery("worker", redis_url, name="second", env=DISPATCHER_ON)
    second.start()
    samples(120)
    runner.start(NAME)
    for _ in range(4):
        tasks.send(NAME)
    wait_for(lambda: state().state not in runner.ACTIVE, timeout=60, what="the migration to end")
    assert state().state == DataMigrationState.DONE, state().error
    assert labels() == ["x+"] * 120
    assert state().done == 120


def test_cancel_stops_it_and_run_resumes() -> None:
    samples(20)
    runner.start(NAME)

    def cancel_after_first(current: DataMigration) -> None:
        if current.batches == 1 and current.state == DataMigrationState.RUNNING:
            call_command("reactive_migrations", "cancel", NAME, stdout=StringIO())

    assert runner.run(NAME, on_batch=cancel_after_first) == DataMigrationState.CANCELED
    assert labels().count("x+") == 10
    with pytest.raises(CommandError, match="is not running"):
        call_command("reactive_migrations", "cancel", NAME)
    call_command("reactive_migrations", "run", NAME, "--inline", stdout=StringIO())
    assert labels() == ["x+"] * 20


def test_list_and_status_describe_the_migrations() -> None:
    out = StringIO()
    call_command("reactive_migrations", "list", stdout=out)
    assert "testapp:fill_maybe  model=testapp.Sample batch_size=10" in out.getvalue()
    out = StringIO()
    call_command("reactive_migrations", "status", stdout=out)
    assert "no data migration has run" in out.getvalue()


def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(CommandError, match=r"No data migration is named 'nope'\. Known: "):
        call_command("reactive_migrations", "run", "nope")
    with pytest.raises(CommandError, match="No data migration is named"):
        call_command("reactive_migrations", "status", "nope")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("reactive_migrations", "run", NAME, "--batch-size", "0")
    with pytest.raises(DefinitionError, match="batch_size must be a whole number"):
        migration(Sample.objects.all(), batch_size=0)
    with pytest.raises(DefinitionError, match="needs a QuerySet"):
        migration([1, 2])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="model instances, unsliced"):
        migration(Sample.objects.all()[:5])
    with pytest.raises(DefinitionError, match="model instances, unsliced"):
        migration(Sample.objects.values("num"))


def test_a_queryset_over_an_unmanaged_or_untracked_model_is_refused() -> None:
    class Remote(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"
            managed = False
            db_table = "remote_table"

    try:
        with pytest.raises(DefinitionError, match="unmanaged or a proxy"):
            migration(Remote.objects.all())
    finally:  # keep the app registry as other tests expect it
        del apps.all_models["testapp"]["remote"]
        apps.clear_cache()
    with override_settings(REACTIVE={"UNTRACKED_MODELS": ["testapp.sample"]}):
        with pytest.raises(DataMigrationError, match="not tracked by change capture"):
            runner.start(NAME)
        from reactive.checks import check_reactions_and_migrations

        assert "reactive.E021" in [m.id for m in check_reactions_and_migrations()]


def test_run_data_migration_operation_schedules_it_when_migrate_applies_it(
    reacting_worker: CeleryProcess,
) -> None:
    from reactive.operations import RunDataMigration

    samples(12)
    operation = RunDataMigration("testapp", "fill_maybe")
    assert operation.deconstruct() == ("reactive.operations.RunDataMigration",
                                       ["testapp", "fill_maybe"], {})
    with connection.schema_editor(atomic=True) as editor:
        operation.database_forwards("testapp", editor, None, None)
    wait_for(lambda: state().state == DataMigrationState.DONE, what="the handed-off run")
    assert labels() == ["x+"] * 12
    unknown = RunDataMigration("testapp", "nope")
    with (
        pytest.raises(DataMigrationError, match="No data migration is named 'testapp:nope'"),
        connection.schema_editor(atomic=True) as editor,
    ):
        unknown.database_forwards("testapp", editor, None, None)


def test_progress_is_a_tracked_table_a_query_can_read() -> None:
    samples(3)
    started = timezone.now()
    call_command("reactive_migrations", "run", NAME, "--inline", stdout=StringIO())
    described = state().describe()
    assert described["state"] == "done" and described["done"] == 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reactive_change WHERE tbl = 'reactive_datamigration' "
                       "AND created_at >= %s", [started])
        assert cursor.fetchone()[0] >= 2
    assert Note.objects.count() == 0


def test_ctrl_c_stops_following_and_leaves_the_migration_running(
    reacting_worker: CeleryProcess, test_database_url: str, redis_url: str,
) -> None:
    import signal
    import subprocess
    import sys

    from tests.support import servers

    # Given a migration of many one-row batches (enough that it outlasts the command's
    # reaction to Ctrl-C: a worker does ~150-250 a second) followed by the command
    samples(1500)
    env = {**os.environ, "DATABASE_URL": test_database_url, "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = subprocess.Popen(
        # manage.py of a project whose package imports its Celery app (as Celery's Django
        # guide has it); the test project keeps its app in tests/celery_app.py.
        [sys.executable, "-c", "import sys, tests.celery_app; from django.core.management "
         "import execute_from_command_line as run; run(sys.argv)",
         "reactive_migrations", "--skip-checks", "run", NAME, "--batch-size", "1"],
        cwd=servers.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: command.poll() is not None
                 or DataMigration.objects.filter(name=NAME, done__gt=0).exists(),
                 what="the first batches")
        assert command.poll() is None, command.communicate()[0][-2000:]
        # When the operator presses Ctrl-C
        command.send_signal(signal.SIGINT)
        output, _ = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
    # Then the command says it is still running, and the workers finish it
    assert b"still running on the workers" in output, output[-2000:]
    assert command.returncode == 0
    wait_for(lambda: state().state == DataMigrationState.DONE, timeout=90, what="the run")
    assert labels() == ["x+"] * 1500
