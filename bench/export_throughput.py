"""Snapshot export throughput and peak memory: ``manage.py reactive_export`` of one table
against ``pg_dump`` of the same table, in the same run, at growing row counts (flat memory is
the claim: Postgres renders the documents and COPY streams them into the ZIP).

    .venv/bin/python bench/export_throughput.py [--rows 100000 400000] \
        [--table testapp_message testapp_note]

testapp_message (the default) has channel and body; testapp_note adds a creation time, so its
documents carry _creationTime.

Prints one JSON line: per row count, rows/s, peak RSS (MiB) and output size for
reactive_export (ZIP, deflate), pg_dump -Fc (compressed) and pg_dump plain (COPY text); and the
same reactive_export command over an empty table (Django's start-up, paid once per run), so
rows/s is also given without it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, database, emit, log, sql

from reactive.embedded.postgres import find_bin_dir

FILLS = {
    "testapp_message": "INSERT INTO testapp_message (channel, body) SELECT 'c' || (g %% 100), "
                       "repeat('message body ', 5) || g FROM generate_series(1, {rows}) g",
    "testapp_note": "INSERT INTO testapp_note (body, created_at) SELECT "
                    "repeat('message body ', 5) || g, now() - g * interval '1.001 second' "
                    "FROM generate_series(1, {rows}) g",
}
EMPTY = "testapp_legacy"  # an exported table the bench leaves empty: the start-up cost


def run_measured(command: list[str], env: dict[str, str], scratch: Path) -> tuple[float, float]:
    """Run a child under GNU time; return (seconds, its peak RSS in MiB). Not our own rusage:
    a child forked from this (large) process would report our RSS, kept across exec."""
    report = scratch / "rss"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *command], cwd=ROOT,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr.decode()[-2000:]}")
    return elapsed, int(report.read_text().split()[-1]) / 1024


def fill(url: str, table: str, rows: int) -> None:
    sql(url, f"TRUNCATE {table} CASCADE")
    sql(url, FILLS[table].format(rows=rows))
    sql(url, "DELETE FROM reactive_change")  # the bench measures export, not the log
    sql(url, f"VACUUM ANALYZE {table}")


def measure(url: str, table: str, rows: int, scratch: Path) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    pg_dump = str(find_bin_dir() / "pg_dump")
    result: dict[str, Any] = {"rows": rows}
    runs = {
        "reactive_export_startup": ([sys.executable, "-m", "django", "reactive_export",
                                     str(scratch / "empty.zip"), "--table", EMPTY,
                                     "--no-progress"], scratch / "empty.zip"),
        "reactive_export": ([sys.executable, "-m", "django", "reactive_export",
                             str(scratch / "out.zip"), "--table", table, "--no-progress"],
                            scratch / "out.zip"),
        "pg_dump_custom": ([pg_dump, "-Fc", "-t", table, "-f", str(scratch / "out.dump"), url],
                           scratch / "out.dump"),
        "pg_dump_plain": ([pg_dump, "--data-only", "-t", table, "-f", str(scratch / "out.sql"),
                           url], scratch / "out.sql"),
    }
    for name, (command, output) in runs.items():
        seconds, rss = run_measured(command, env, scratch)
        result[name] = {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds),
                        "peak_rss_mib": round(rss, 1),
                        "output_mib": round(output.stat().st_size / 2**20, 2)}
        log(f"{table} {rows} rows {name}: {result[name]}")
    result["reactive_export_startup"].pop("rows_per_s")
    work = result["reactive_export"]["seconds"] - result["reactive_export_startup"]["seconds"]
    result["reactive_export"]["rows_per_s_without_startup"] = round(rows / max(work, 1e-3))
    result["ratio_rows_per_s_vs_pg_dump_custom"] = round(
        result["reactive_export"]["rows_per_s"] / result["pg_dump_custom"]["rows_per_s"], 3)
    result["ratio_without_startup_vs_pg_dump_custom"] = round(
        result["reactive_export"]["rows_per_s_without_startup"]
        / result["pg_dump_custom"]["rows_per_s"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--table", choices=list(FILLS), nargs="+", default=["testapp_message"])
    args = parser.parse_args()
    results = []
    with database("reactive_bench_export") as url, tempfile.TemporaryDirectory() as tmp:
        for table in args.table:
            for rows in args.rows:
                log(f"filling {table} with {rows} rows")
                fill(url, table, rows)
                results.append({"table": table, **measure(url, table, rows, Path(tmp))})
    emit({"benchmark": "export_throughput", "results": results})


if __name__ == "__main__":
    main()
