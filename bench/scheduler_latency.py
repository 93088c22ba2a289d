"""Scheduled mutations against bare Celery tasks doing the same ORM write, in the same run.

Both sides write one Note per call through the same Celery worker on the same Redis:

- **scheduled**: a job of the internal mutation ``testapp/jobs:write_note``, created with
  ``Scheduler`` (the code behind ``ctx.scheduler``) in a transaction, sent on commit, claimed
  and run exactly once in a SERIALIZABLE transaction by the worker;
- **bare**: ``send_task("testapp.bare_note", eta=due)``, a task whose body is
  ``Note.objects.create``.

Latency is due time → the Note's ``created_at`` (the write inside the run), for calls due
``--delay`` seconds after they are made, spaced ``--gap`` apart so the worker is idle. Jobs/s is
``--burst`` calls due at once (jobs created 100 per transaction), from the first send to the
last Note. Phases run in ABBA order. Prints one JSON line; ratios are scheduled / bare.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
import uuid

from _common import database, emit, log, percentile, start_worker

from tests.support.servers import scratch_dir

BATCH = 100


def wait_notes(
    prefix: str, count: int, timeout: float = 120
) -> list[tuple[str, datetime.datetime]]:
    from tests.testapp.models import Note

    deadline = time.monotonic() + timeout
    while True:
        rows = list(Note.objects.filter(body__startswith=prefix).values_list("body", "created_at"))
        if len(rows) >= count:
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(rows)} of {count} notes for {prefix} after {timeout}s")
        time.sleep(0.05)


def send(kind: str, prefix: str, dues: list[datetime.datetime]) -> None:
    """Make one call per due time: jobs BATCH per transaction, or bare tasks."""
    from django.db import transaction

    from reactive.functions.scheduler import Scheduler
    from tests.celery_app import app

    scheduler = Scheduler()
    for start in range(0, len(dues), BATCH):
        chunk = list(enumerate(dues))[start : start + BATCH]
        if kind == "scheduled":
            with transaction.atomic():
                for i, due in chunk:
                    body = f"{prefix} {i} {due.timestamp()}"
                    scheduler.run_at(due, "testapp/jobs:write_note", body=body)
        else:
            now = datetime.datetime.now(datetime.UTC)
            for i, due in chunk:
                body = f"{prefix} {i} {due.timestamp()}"
                app.send_task("testapp.bare_note", args=[body], eta=due if due > now else None)


def latency_phase(kind: str, calls: int, delay: float, gap: float) -> list[float]:
    prefix = f"{kind}-lat-{uuid.uuid4().hex[:8]}"
    for i in range(calls):
        due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delay)
        body = f"{prefix} {i} {due.timestamp()}"
        _call(kind, body, due)
        time.sleep(gap)  # pacing the load, not synchronising: the worker should be idle
    rows = wait_notes(prefix, calls)
    return [created.timestamp() - float(body.rsplit(" ", 1)[1]) for body, created in rows]


def _call(kind: str, body: str, due: datetime.datetime) -> None:
    from django.db import transaction

    from reactive.functions.scheduler import Scheduler
    from tests.celery_app import app

    if kind == "scheduled":
        with transaction.atomic():
            Scheduler().run_at(due, "testapp/jobs:write_note", body=body)
    else:
        app.send_task("testapp.bare_note", args=[body], eta=due)


def burst_phase(kind: str, calls: int) -> float:
    prefix = f"{kind}-burst-{uuid.uuid4().hex[:8]}"
    began = datetime.datetime.now(datetime.UTC)
    send(kind, prefix, [began] * calls)
    rows = wait_notes(prefix, calls)
    last = max(created for _, created in rows)
    return calls / (last - began).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="latency calls per side")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds from call to due")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between latency calls")
    parser.add_argument("--burst", type=int, default=2000, help="calls per throughput phase")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    options = parser.parse_args()

    from reactive.embedded import RedisServer

    redis = RedisServer(scratch_dir("reactive-bench-redis-") / "data", fast=True)
    redis.start()
    with database("reactive_bench_scheduler") as db_url:
        os.environ.update({"DATABASE_URL": db_url, "REDIS_URL": redis.url,
                           "DJANGO_SETTINGS_MODULE": "tests.settings"})  # fmt: skip
        import django

        django.setup()
        from reactive.models import Job, JobState
        from tests.celery_app import app

        app.conf.broker_url = redis.url
        worker = start_worker(db_url, redis.url, options.concurrency)
        try:
            latencies: dict[str, list[float]] = {"scheduled": [], "bare": []}
            rates: dict[str, list[float]] = {"scheduled": [], "bare": []}
            burst_phase("bare", 50)  # warm-up: worker processes up, connections made
            burst_phase("scheduled", 50)
            for kind in ("scheduled", "bare", "bare", "scheduled"):
                log(f"latency phase: {kind}")
                latencies[kind] += latency_phase(
                    kind, options.calls // 2, options.delay, options.gap
                )
            for kind in ("bare", "scheduled", "scheduled", "bare"):
                log(f"burst phase: {kind}")
                rates[kind].append(burst_phase(kind, options.burst // 2))
            claims = [  # due time -> claimed by the worker (before its connection's first write)
                (started - due).total_seconds()
                for args, due, started in Job.objects.values_list("args", "due_at", "started_at")
                if "-lat-" in args["body"] and started is not None
            ]
            jobs_ok = Job.objects.filter(state=JobState.SUCCESS).count()
            jobs_all = Job.objects.count()
        finally:
            worker.terminate()
            worker.wait(30)
    redis.stop()

    def ms(kind: str, pct: float) -> float:
        return round(percentile(latencies[kind], pct) * 1000, 1)

    rate = {kind: round(sum(values) / len(values), 1) for kind, values in rates.items()}
    emit({
        "benchmark": "scheduler_latency",
        "scheduled_p50_ms": ms("scheduled", 50),
        "scheduled_p99_ms": ms("scheduled", 99),
        "scheduled_claim_p50_ms": round(percentile(claims, 50) * 1000, 1),
        "bare_p50_ms": ms("bare", 50),
        "bare_p99_ms": ms("bare", 99),
        "scheduled_jobs_per_s": rate["scheduled"],
        "bare_tasks_per_s": rate["bare"],
        "throughput_ratio": round(rate["scheduled"] / rate["bare"], 3),
        "p50_ratio": round(ms("scheduled", 50) / ms("bare", 50), 2) if ms("bare", 50) else None,
        "jobs_succeeded": jobs_ok,
        "jobs_total": jobs_all,
        "calls_per_side": {"latency": options.calls, "burst": options.burst},
        "delay_s": options.delay,
        "worker": f"prefork x{options.concurrency}",
    })  # fmt: skip


if __name__ == "__main__":
    main()
