"""Snapshot export throughput and peak memory: ``manage.py reactive_export`` of one table
against ``pg_dump`` of the same table, in the same run, at growing row counts (flat memory is
the claim: rows stream through a server-side cursor into the ZIP).

    .venv/bin/python bench/export_throughput.py [--rows 100000 400000]

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

TABLE = "testapp_message"
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


def fill(url: str, rows: int) -> None:
    sql(url, f"TRUNCATE {TABLE}")
    sql(url, f"INSERT INTO {TABLE} (channel, body) SELECT 'c' || (g %% 100), "
             f"repeat('message body ', 5) || g FROM generate_series(1, {rows}) g")
    sql(url, "DELETE FROM reactive_change")  # the bench measures export, not the log
    sql(url, f"VACUUM ANALYZE {TABLE}")


def measure(url: str, rows: int, scratch: Path) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    pg_dump = str(find_bin_dir() / "pg_dump")
    result: dict[str, Any] = {"rows": rows}
    runs = {
        "reactive_export_startup": ([sys.executable, "-m", "django", "reactive_export",
                                     str(scratch / "empty.zip"), "--table", EMPTY,
                                     "--no-progress"], scratch / "empty.zip"),
        "reactive_export": ([sys.executable, "-m", "django", "reactive_export",
                             str(scratch / "out.zip"), "--table", TABLE, "--no-progress"],
                            scratch / "out.zip"),
        "pg_dump_custom": ([pg_dump, "-Fc", "-t", TABLE, "-f", str(scratch / "out.dump"), url],
                           scratch / "out.dump"),
        "pg_dump_plain": ([pg_dump, "--data-only", "-t", TABLE, "-f", str(scratch / "out.sql"),
                           url], scratch / "out.sql"),
    }
    for name, (command, output) in runs.items():
        seconds, rss = run_measured(command, env, scratch)
        result[name] = {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds),
                        "peak_rss_mib": round(rss, 1),
                        "output_mib": round(output.stat().st_size / 2**20, 2)}
        log(f"{rows} rows {name}: {result[name]}")
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
    args = parser.parse_args()
    results = []
    with database("reactive_bench_export") as url, tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            log(f"filling {TABLE} with {rows} rows")
            fill(url, rows)
            results.append(measure(url, rows, Path(tmp)))
    emit({"benchmark": "export_throughput", "table": TABLE, "results": results})


if __name__ == "__main__":
    main()
