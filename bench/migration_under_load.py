"""A data migration over ``--rows`` rows while the bank-transfer workload runs (issue #10).

One uvicorn process serves ``testapp:transfer`` (bench/contention.py's workload: ``--clients``
HTTP clients moving random amounts between 10 accounts). Phases:

- **before**: the workload alone for ``--seconds``;
- **during**: the workload while ``@migration testapp:fill_maybe`` (per-row ``save()`` of two
  fields, batches of ``--batch-size``, each one SERIALIZABLE transaction that also moves the
  cursor) runs over every Sample row, inline in this process, until it is done;
- **after**: the workload alone again for ``--seconds``.

Reports the migration's rows/s and the workload's transfers/s and latency p50/p99 in each
phase. Correctness: every row migrated exactly once (``maybe = num * 2`` and exactly one "+"
appended to the label: a row applied twice would carry two) and the bank's total conserved.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from _common import ROOT, Client, Run, database, emit, live_server, load, log, sql
from contention import open_accounts, total, transfer

from tests.support.servers import scratch_dir

NAME = "testapp:fill_maybe"


def seed(db_url: str, rows: int) -> None:
    """``rows`` Sample rows to migrate, written in one statement, then the change log they
    produced pruned so the run starts clean."""
    log(f"seeding {rows} rows")
    sql(db_url, "TRUNCATE testapp_sample")
    sql(db_url, "INSERT INTO testapp_sample (num, label, at, amount, flag) "
                "SELECT n, 'x', '2024-01-01T00:00:00Z', 1.00, false "
                "FROM generate_series(1, %s) n", (rows,))
    sql(db_url, "DELETE FROM reactive_change WHERE tbl = 'testapp_sample'")
    sql(db_url, "VACUUM ANALYZE testapp_sample")


def workload(url: str, clients: int, seconds: float) -> Run:
    pool = [Client(url) for _ in range(clients)]
    try:
        return load(pool, seconds, transfer)
    finally:
        for client in pool:
            client.close()


def during(url: str, db_url: str, clients: int, batch_size: int
           ) -> tuple[Run, float, dict[str, Any]]:
    """The workload in slices of 2 s until the migration is done. The migration runs as an
    operator would run it, ``manage.py reactive_migrations run NAME --inline``, in its own
    process (so it shares no interpreter lock with the benchmark's client threads)."""
    from reactive.models import DataMigration

    DataMigration.objects.filter(name=NAME).delete()
    out = scratch_dir("reactive-bench-migration-") / "run.log"
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    log(f"  reactive_migrations run {NAME} --inline; output in {out}")
    began = time.perf_counter()
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "reactive_migrations", "run", NAME, "--inline",
             "--batch-size", str(batch_size)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
        run = Run()
        while process.poll() is None:
            run.add(workload(url, clients, 2.0))
            done = DataMigration.objects.filter(name=NAME).values_list("done", flat=True).first()
            log(f"  migration: {done} rows; workload so far {run.rate()}/s")
        seconds = time.perf_counter() - began
    row = DataMigration.objects.get(name=NAME)
    return run, seconds, {"state": row.state, "exit": process.returncode, "done": row.done,
                          "skipped": row.skipped, "batches": row.batches}


def verify(db_url: str, rows: int) -> dict[str, int]:
    counts = {
        "rows_found": "SELECT count(*) FROM testapp_sample",
        "not_migrated": "SELECT count(*) FROM testapp_sample WHERE maybe IS NULL",
        "wrong_value": "SELECT count(*) FROM testapp_sample WHERE maybe IS DISTINCT FROM num * 2",
        "label_not_once": "SELECT count(*) FROM testapp_sample WHERE label <> 'x+'",
    }
    return {name: int(sql(db_url, query)) for name, query in counts.items()}


def summary(run: Run) -> dict[str, Any]:
    return {"transfers_per_s": run.rate(), "p50_ms": run.ms(50), "p99_ms": run.ms(99),
            "commits": run.ok, "outcomes": run.outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000,
                        help="rows to migrate (the documented showcase: 1000000)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4, help="bank-transfer HTTP clients")
    parser.add_argument("--seconds", type=float, default=10, help="before and after phases")
    parser.add_argument("--pool", action="store_true", help="serve with Django's psycopg pool")
    options = parser.parse_args()

    with database("reactive_bench_migration_load") as db_url, \
            live_server(db_url, pool=options.pool) as server:
        os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "tests.settings"})
        import django

        django.setup()
        seed(db_url, options.rows)
        money_before = open_accounts(db_url)
        workload(server.url, 1, 1.0)  # warm-up
        log(f"phase: before ({options.clients} clients, {options.seconds}s)")
        before = workload(server.url, options.clients, options.seconds)
        log(f"phase: during (migrating {options.rows} rows)")
        busy, seconds, migration = during(server.url, db_url, options.clients,
                                          options.batch_size)
        log(f"phase: after ({options.seconds}s)")
        after = workload(server.url, options.clients, options.seconds)
        checks = verify(db_url, options.rows)
        money_after = total(db_url)

    emit({
        "benchmark": "migration_under_load",
        "rows": options.rows,
        "batch_size": options.batch_size,
        "clients": options.clients,
        "migration_state": migration["state"],
        "migration_exit_code": migration["exit"],
        "migration_seconds": round(seconds, 1),
        "migration_rows_per_s": round(options.rows / seconds),
        "migration_done": migration["done"],
        "migration_skipped": migration["skipped"],
        "migration_batches": migration["batches"],
        "before": summary(before),
        "during": summary(busy),
        "after": summary(after),
        "during_over_before_rate": round(busy.rate() / before.rate(), 2) if before.rate() else None,
        "during_over_before_p50": round(busy.ms(50) / before.ms(50), 2) if before.ms(50) else None,
        **checks,
        "exactly_once": checks["rows_found"] == options.rows and checks["not_migrated"] == 0
        and checks["wrong_value"] == 0 and checks["label_not_once"] == 0,
        "money_before": money_before,
        "money_after": money_after,
        "conserved": money_before == money_after,
        "db_pool": options.pool,
    })  # fmt: skip


if __name__ == "__main__":
    main()
