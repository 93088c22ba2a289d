"""Snapshot export throughput and peak memory: ``manage.py reactive_export`` of one table
against ``pg_dump`` of the same table, in the same run, at growing row counts (flat memory is
the claim: Postgres renders the documents and COPY streams them into the ZIP).

    .venv/bin/python bench/export_throughput.py [--rows 100000 400000] \
        [--table testapp_message testapp_note] [--repeat 3] [--baseline ../main]

testapp_message (the default) has channel and body; testapp_note adds a creation time, so its
documents carry _creationTime.

Prints one JSON line: per table and row count, rows/s, peak RSS (MiB) and output size for
reactive_export (ZIP, deflate), pg_dump -Fc (compressed) and pg_dump plain (COPY text). The
export runs in a child that sets Django up and then times the command itself, so rows/s is
given with and without Django's start-up (a second or more for the test project).
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


# The export in a child: Django set up, then the command timed by itself (start-up excluded).
EXPORT = """import sys, time, django
django.setup()
from django.core.management import call_command
started = time.perf_counter()
call_command("reactive_export", sys.argv[1], "--table", sys.argv[2], "--no-progress")
print(time.perf_counter() - started, file=sys.stderr)
"""


def run_measured(command: list[str], env: dict[str, str], scratch: Path, cwd: Path = ROOT
                 ) -> tuple[float, float, str]:
    """Run a child under GNU time; return (seconds, its peak RSS in MiB, its stderr). Not our
    own rusage: a child forked from this (large) process would report our RSS."""
    report = scratch / "rss"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *command], cwd=cwd,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr.decode()[-2000:]}")
    return elapsed, int(report.read_text().split()[-1]) / 1024, done.stderr.decode()


def fill(url: str, table: str, rows: int) -> None:
    sql(url, f"TRUNCATE {table} CASCADE")
    sql(url, FILLS[table].format(rows=rows))
    sql(url, "DELETE FROM reactive_change")  # the bench measures export, not the log
    sql(url, f"VACUUM ANALYZE {table}")


def measure(url: str, table: str, rows: int, scratch: Path, repeat: int,
            baseline: Path | None) -> dict[str, Any]:
    """Each tool ``repeat`` times in turn; the fastest run of each (the least disturbed by
    other work on the machine), with the peak RSS of that run. ``baseline``: another checkout
    whose reactive_export runs too (``python -c`` imports ``reactive`` from its directory)."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    pg_dump = str(find_bin_dir() / "pg_dump")
    runs = {
        "reactive_export": ([sys.executable, "-c", EXPORT, str(scratch / "out.zip"), table],
                            scratch / "out.zip"),
        "pg_dump_custom": ([pg_dump, "-Fc", "-t", table, "-f", str(scratch / "out.dump"), url],
                           scratch / "out.dump"),
        "pg_dump_plain": ([pg_dump, "--data-only", "-t", table, "-f", str(scratch / "out.sql"),
                           url], scratch / "out.sql"),
    }
    if baseline is not None:
        runs["reactive_export_baseline"] = runs["reactive_export"]
    result: dict[str, Any] = {"rows": rows}
    for _ in range(repeat):
        for name, (command, output) in runs.items():
            cwd = baseline if name == "reactive_export_baseline" and baseline else ROOT
            seconds, rss, err = run_measured(command, env, scratch, cwd)
            run: dict[str, Any] = {
                "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds),
                "peak_rss_mib": round(rss, 1),
                "output_mib": round(output.stat().st_size / 2**20, 2),
            }
            if name.startswith("reactive_export"):
                work = float(err.strip().splitlines()[-1])
                run["export_seconds"] = round(work, 3)
                run["rows_per_s_without_startup"] = round(rows / work)
            log(f"{table} {rows} rows {name}: {run}")
            if name not in result or run["seconds"] < result[name]["seconds"]:
                result[name] = run
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
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best counts")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (say, of main) whose export to time alongside")
    args = parser.parse_args()
    results = []
    with database("reactive_bench_export") as url, tempfile.TemporaryDirectory() as tmp:
        for table in args.table:
            for rows in args.rows:
                log(f"filling {table} with {rows} rows")
                fill(url, table, rows)
                result = measure(url, table, rows, Path(tmp), args.repeat, args.baseline)
                results.append({"table": table, **result})
    emit({"benchmark": "export_throughput", "results": results})


if __name__ == "__main__":
    main()
