"""Reactor and scheduler metrics on /api/metrics: round phases, push lag and re-runs from a
live sync session; the scheduler's queue, lag and outcomes, reactions' lag and data
migrations read from Postgres; and every process's counts merged in multiprocess mode."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from reactive.functions.runtime import in_thread
from reactive.models import DataMigration, Job, JobState, Reaction
from reactive.observability.collectors import DatabaseCollector
from tests.support import servers
from tests.support.fixtures_celery import CeleryProcess
from tests.support.syncclient import SyncClient
from tests.support.waiting import wait_for
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

KEY = "tests-admin-key-0123456789"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/api/metrics", headers={"Authorization": f"Convex {KEY}"},
                        timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_reactor_rounds_phases_lag_and_sessions_are_exported(live_server_url: str) -> None:
    before = await asyncio.to_thread(scrape, live_server_url)
    async with SyncClient(live_server_url) as client:
        # Given a live query
        query = await client.subscribe("testapp:list_notes")
        await client.result(query)
        # When another writer commits a note it shows
        await in_thread(Note.objects.create, body="metrics:pushed")
        await client.result(query, lambda v: any(n["body"] == "metrics:pushed" for n in v))
        # (a round is recorded once it has sent: the client may see the push first)
        rounds = "reactive_reactor_rounds_total"

        def both_rounds_recorded() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            samples = scrape(live_server_url)
            return samples if value(samples, rounds) >= value(before, rounds) + 2 else {}

        during = await asyncio.to_thread(wait_for, both_rounds_recorded, timeout=10,
                                         what="both rounds to be recorded")
    # Then the rounds, each phase's time, the commit → push lag and the re-runs are counted
    name = "reactive_reactor_round_phase_seconds_count"
    for phase in ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send"):
        assert value(during, name, phase=phase) > value(before, name, phase=phase), phase
    lag = "reactive_reactor_push_lag_seconds_count"
    assert value(during, lag) > value(before, lag)
    assert 0 < value(during, "reactive_reactor_push_lag_seconds_sum") < 60
    reruns = "reactive_reactor_reruns_per_round_sum"
    assert value(during, reruns) >= value(before, reruns) + 2  # the first run and the re-run
    assert value(during, "reactive_reactor_sessions") >= 1
    assert value(during, "reactive_reactor_subscriptions") >= 1
    assert value(during, "reactive_reactor_changes_total") > value(
        before, "reactive_reactor_changes_total")


def test_scheduler_reactions_and_migrations_gauges_come_from_the_database() -> None:
    # Given (no worker running) a job due 10 s ago, one that started 2 s late and one failed
    now = timezone.now()
    Job.objects.create(function="testapp:echo", due_at=now - datetime.timedelta(seconds=10))
    Job.objects.create(function="testapp:echo", state=JobState.SUCCESS,
                       due_at=now - datetime.timedelta(seconds=5),
                       started_at=now - datetime.timedelta(seconds=3), finished_at=now)
    Job.objects.create(function="testapp:echo", state=JobState.FAILED, due_at=now,
                       started_at=now, finished_at=now)
    Reaction.objects.create(name="metrics-reaction", snapshot="1:1:",
                            cursor_at=now - datetime.timedelta(seconds=30))
    DataMigration.objects.create(name="metrics-migration", batch_size=10)
    # When collected
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in DatabaseCollector().collect() for s in family.samples}
    # Then
    assert value(samples, "reactive_scheduler_due_jobs") == 1
    assert value(samples, "reactive_scheduler_due_lag_seconds") >= 10
    assert 2 <= value(samples, "reactive_scheduler_start_lag_seconds", quantile="1") < 3
    assert value(samples, "reactive_scheduler_finished_jobs", state="failed") == 1
    assert value(samples, "reactive_scheduler_finished_jobs", state="success") == 1
    assert value(samples, "reactive_reaction_lag_seconds", reaction="metrics-reaction",
                 state="active") >= 30
    assert value(samples, "reactive_data_migrations", state="pending") == 1


def test_a_failed_job_in_the_worker_shows_on_the_servers_metrics(
    live_server_url: str, worker: CeleryProcess
) -> None:
    from reactive.functions.runtime import runtime

    # When the worker runs a scheduled mutation that fails
    pk = int(runtime.run("testapp/jobs:schedule_by_name",
                         {"name": "testapp/dataio:noisy_write", "args": {"body": "fail"}}))
    wait_for(lambda: Job.objects.filter(pk=pk, state=JobState.FAILED).exists(), timeout=60,
             what="the failed job")
    # Then the server, another process, reports it and the start lag
    samples = scrape(live_server_url)
    assert value(samples, "reactive_scheduler_finished_jobs", state="failed") >= 1
    assert ("reactive_scheduler_start_lag_seconds", (("quantile", "0.95"),)) in samples


def test_multiprocess_mode_merges_every_worker_process(
    test_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # Given uvicorn with two worker processes sharing a prometheus_client multiprocess dir
    directory = tmp_path / "prometheus"
    directory.mkdir()
    server = servers.AsgiServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_url,
                                 "PROMETHEUS_MULTIPROC_DIR": str(directory)},
                                args=("--workers", "2"))
    server.start()
    try:
        # When 40 calls arrive on fresh connections (spread over both processes)
        for n in range(40):
            with requests.Session() as session:
                session.post(f"{server.url}/api/query", timeout=10,
                             json={"path": "testapp:echo", "args": {"value": n}})
        pids = {p.stem.rsplit("_", 1)[-1] for p in directory.glob("counter_*.db")}
        # Then any process's scrape counts all 40, and the database gauges once
        samples = scrape(server.url)
    finally:
        server.stop()
    assert len(pids) >= 2, pids
    assert value(samples, "reactive_function_calls_total", function="testapp:echo",
                 kind="query", outcome="success") == 40
    assert ("reactive_change_log_rows", ()) in samples


def test_a_multiprocess_dir_that_is_not_a_directory_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core import checks

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    ids = {m.id for m in checks.run_checks()}
    assert "reactive.W074" in ids
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert "reactive.W074" not in {m.id for m in checks.run_checks()}
