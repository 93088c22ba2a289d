"""Crons: declarations checked early, every occurrence fired once under concurrent ticks and
real Celery beats, overlaps skipped and recorded, retired crons, and ``reactive_crons``."""

from __future__ import annotations

import datetime
import io
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from reactive.exceptions import DefinitionError
from reactive.functions.registry import registry as functions
from reactive.models import Cron, CronRun, CronRunStatus, Job, JobState
from reactive.scheduling import cron_tick, crons
from reactive.scheduling.crons import CronExpression, CronRegistry, CronSpec, Interval
from tests.support.fixtures_celery import CeleryProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

# Synthetic ticks happen a day ahead, so that their jobs lie beyond the ETA horizon and no
# worker runs them: these tests are about firing, not running.
BASE = timezone.now().replace(microsecond=0) + datetime.timedelta(days=1)


def at(seconds: float) -> datetime.datetime:
    return BASE + datetime.timedelta(seconds=seconds)


def specs(*declared: CronSpec) -> CronRegistry:
    registry = CronRegistry()
    for spec in declared:
        registry.add(spec)
    return registry


def minutely(name: str = "minutely") -> CronSpec:
    return CronSpec(name, Interval(60), "testapp/jobs:cron_note", {"body": name})


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: crons.interval("x", "testapp/jobs:cron_note"), "positive interval"),
        (lambda: crons.cron("x", "61 * * * *", "testapp/jobs:cron_note"), "five-field"),
        (lambda: crons.cron("x", "* * * *", "testapp/jobs:cron_note"), "five-field"),
        (lambda: crons.hourly("x", "testapp/jobs:cron_note", minute=60), "minute=60"),
        (lambda: crons.weekly("x", "testapp/jobs:cron_note", day="someday"), "someday"),
        (lambda: crons.interval("note every second", "testapp/jobs:cron_note", hours=1), "Two"),
    ],
)
def test_bad_declaration_fails_at_import(declare: Callable[[], Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        declare()


def test_cron_with_unknown_function_or_bad_args_fails_at_start_up() -> None:
    unknown = specs(CronSpec("ghost", Interval(60), "testapp/jobs:nope"))
    with pytest.raises(DefinitionError, match=r"Cron 'ghost'.*no function of that name"):
        unknown.validate(functions)
    bad_args = specs(CronSpec("typo", Interval(60), "testapp/jobs:cron_note", {"bdy": "x"}))
    with pytest.raises(DefinitionError, match=r"Cron 'typo'.*bdy"):
        bad_args.validate(functions)


def test_discovery_finds_the_apps_crons() -> None:
    names = {spec.name for spec in crons.registry}
    assert {"note every second", "weekday mornings", "nightly"} <= names
    assert crons.registry.get("nightly").schedule == CronExpression("30 3 * * *")  # type: ignore[union-attr]


def test_each_occurrence_fires_once_under_concurrent_ticks() -> None:
    # Given a cron due at BASE+60s, and two ticks (two beats) at the same moment
    declared = specs(minutely())
    cron_tick.sync(BASE, declared, functions)
    start = threading.Barrier(2)
    results: list[list[CronRun]] = []

    def tick() -> None:
        start.wait()
        try:
            results.append(cron_tick.tick(at(61), declared, functions))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    # Then the occurrence fired once, and the cron moved on to the next one
    assert sorted(len(runs) for runs in results) == [0, 1]
    [run] = CronRun.objects.all()
    assert (run.status, run.scheduled_for) == (CronRunStatus.FIRED, at(60))
    assert Job.objects.get().due_at == at(60)
    assert Cron.objects.get().next_run_at == at(120)
    assert cron_tick.tick(at(61), declared, functions) == []


def test_occurrence_skipped_while_previous_run_still_runs() -> None:
    declared = specs(minutely())
    cron_tick.sync(BASE, declared, functions)
    [first] = cron_tick.tick(at(60), declared, functions)
    # When the next occurrence comes while the first job is still pending
    [second] = cron_tick.tick(at(120), declared, functions)
    # Then it is skipped, and recorded with the reason
    assert second.status == CronRunStatus.SKIPPED
    assert "still pending" in second.reason
    assert second.outcome == "skipped"
    # And once the first run is over, the cron fires again (missed occurrences are not replayed)
    Job.objects.filter(pk=first.job_id).update(state=JobState.SUCCESS)
    [third] = cron_tick.tick(at(1000), declared, functions)
    assert (third.status, third.scheduled_for) == (CronRunStatus.FIRED, at(180))
    assert Cron.objects.get().next_run_at == at(1020)
    assert CronRun.objects.count() == 3


def test_renamed_or_removed_cron_is_retired_and_can_come_back() -> None:
    cron_tick.sync(BASE, specs(minutely("old name")), functions)
    # When the code renames the cron
    cron_tick.sync(at(1), specs(minutely("new name")), functions)
    # Then the old one is retired and never fires; the new one is active
    old, new = Cron.objects.get(name="old name"), Cron.objects.get(name="new name")
    assert (old.active, old.retired_at, old.next_run_at) == (False, at(1), None)
    assert (new.active, new.next_run_at) == (True, at(61))
    assert [run.cron.name for run in cron_tick.tick(at(100), specs(minutely("new name")))] == [
        "new name"
    ]
    # And declaring the old name again revives it
    cron_tick.sync(at(200), specs(minutely("old name")), functions)
    assert Cron.objects.get(name="old name").active
    assert not Cron.objects.get(name="new name").active


def test_changed_schedule_reschedules_the_cron() -> None:
    cron_tick.sync(BASE, specs(minutely()), functions)
    hourly = CronSpec("minutely", CronExpression("0 * * * *"), "testapp/jobs:cron_note", {})
    cron_tick.sync(at(5), specs(hourly), functions)
    row = Cron.objects.get()
    assert row.schedule == "cron 0 * * * *"
    assert row.args == {}
    assert row.next_run_at == (at(5) + datetime.timedelta(hours=1)).replace(minute=0, second=0)


def test_crons_fire_through_two_beats_without_double_firing(
    make_celery: Callable[..., CeleryProcess], redis_url: str, celery_app: Any
) -> None:
    # Given a worker and, by mistake, two beat processes (one logging at DEBUG, one at INFO)
    processes = [
        make_celery("worker", redis_url, name="crons", pool="threads"),
        make_celery("beat", redis_url, loglevel="DEBUG"),
        make_celery("beat", redis_url),
    ]
    for process in processes:
        process.launch()
    for process in processes:
        process.wait_ready()
    # When a few seconds of one-second crons have gone by
    fired = CronRun.objects.filter(cron__name="note every second", status=CronRunStatus.FIRED)
    wait_for(
        lambda: fired.filter(job__state=JobState.SUCCESS).count() >= 3,
        timeout=30, what="three successful runs of 'note every second'",
    )  # fmt: skip
    wait_for(
        lambda: CronRun.objects.filter(
            cron__name="slow every second", status=CronRunStatus.SKIPPED
        ).exists(),
        timeout=30, what="an overlapping run of 'slow every second' to be skipped",
    )  # fmt: skip
    for process in processes[1:]:
        process.stop()
    # Then every occurrence was recorded once, one second apart, each fired run ran once
    times = sorted(CronRun.objects.filter(cron__name="note every second").values_list(
        "scheduled_for", flat=True
    ))  # fmt: skip
    assert len(times) == len(set(times))
    assert all((b - a).total_seconds() % 1 == 0 for a, b in itertools.pairwise(times))
    wait_for(lambda: not Job.objects.filter(state__in=[JobState.PENDING, JobState.IN_PROGRESS],
                                            function="testapp/jobs:cron_note").exists(),
             what="cron jobs to finish")  # fmt: skip
    assert Note.objects.filter(body="cron tick").count() == fired.count()
    slow = CronRun.objects.filter(cron__name="slow every second", status=CronRunStatus.SKIPPED)
    assert "a cron never overlaps with itself" in slow.first().reason  # type: ignore[union-attr]
    # And the beats sent the app's own entries, with no beat configuration in the project:
    # logged at DEBUG, and kept out of an INFO log, where a tick a second would bury the rest
    verbose, quiet = processes[1].log_text(), processes[2].log_text()
    assert "Sending due task reactive.cron_tick" in verbose
    assert "Sending due task reactive.sweep" in verbose
    assert "Sending due task reactive." not in quiet
    assert "beat: Starting..." in quiet


def test_reactive_crons_prints_each_cron_with_next_runs() -> None:
    Cron.objects.create(name="gone", schedule="every 5s", function="x:y", active=False,
                        retired_at=timezone.now())  # fmt: skip
    out = io.StringIO()
    call_command("reactive_crons", "--count", "2", stdout=out)
    text = out.getvalue()
    block = text.split("weekday mornings\n", 1)[1].split("\n\n", 1)[0]
    assert "schedule: cron 0 9 * * 1-5" in block
    assert "function: testapp/jobs:cron_note" in block
    runs = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)Z", block.splitlines()[2])
    assert len(runs) == 2
    for run in runs:
        when = datetime.datetime.fromisoformat(run)
        assert (when.hour, when.minute, when.second) == (9, 0, 0) and when.weekday() < 5
    assert "note every second\n  schedule: every 1s" in text
    assert "gone\n  retired" in text


def test_admin_lists_crons_and_runs(admin_client: Client) -> None:
    declared = specs(minutely())
    cron_tick.sync(BASE, declared, functions)
    cron_tick.tick(at(60), declared, functions)
    cron_tick.tick(at(120), declared, functions)
    for url, expected in [
        ("/admin/reactive/cron/", "minutely"),
        ("/admin/reactive/cronrun/", "skipped"),
        ("/admin/reactive/cronrun/?status__exact=fired", "pending"),
        ("/admin/reactive/cron/?q=minutely", "every 60s"),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert expected in response.content.decode(), url
