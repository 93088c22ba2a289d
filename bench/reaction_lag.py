"""Reaction lag (commit → handler) against a plain Celery task sent from on_commit, same run.

Both sides commit one Message per transaction at ``--rate`` commits/s for ``--seconds``:

- **reaction**: ``@on_change(Message, where=Q(channel="bench-rx"))``
  (``testapp:bench_reaction``) writes a Note; the worker's dispatcher LISTENs for the commit
  and sends a drain task, which handles the change in its own SERIALIZABLE transaction;
- **on_commit**: ``transaction.on_commit(send_task("testapp.bare_note"))`` after the same
  insert; the task writes the Note.

Lag is the commit (taken in this process right after COMMIT returns) → the Note's
``created_at`` (written inside the handler or task). Phases run in ABBA order on one worker.
Prints one JSON line; ratios are reaction / on_commit. Whether a side keeps up shows in the
p50 of the first and of the last fifth of each phase: a steady lag keeps them close, a
growing backlog makes the last far larger.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from _common import database, emit, log, percentile, start_worker

from tests.support.servers import scratch_dir


def phase(kind: str, rate: float, seconds: float) -> tuple[list[float], float]:
    """Lags (s) of one phase in commit order, and the write rate the writer reached."""
    from django.db import transaction

    from tests.celery_app import app
    from tests.testapp.models import Message, Note

    prefix = f"{kind}-{uuid.uuid4().hex[:8]}"
    committed: dict[str, float] = {}
    count = int(rate * seconds)
    began = time.monotonic()
    for i in range(count):
        body = f"{prefix}-{i}"
        with transaction.atomic():
            if kind == "reaction":
                Message.objects.create(channel="bench-rx", body=body)
            else:
                Message.objects.create(channel="bench-plain", body=body)
                note = f"bench-rx:{body}"
                transaction.on_commit(lambda n=note: app.send_task("testapp.bare_note", args=[n]))
        committed[body] = time.time()
        pause = began + (i + 1) / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # pacing the load at --rate, not synchronising
    written = count / (time.monotonic() - began)
    deadline = time.monotonic() + 120
    while True:
        rows = dict(Note.objects.filter(body__startswith=f"bench-rx:{prefix}-")
                    .values_list("body", "created_at"))
        if len(rows) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if len(rows) < count:
        raise TimeoutError(f"{kind}: only {len(rows)} of {count} handled")
    return [rows[f"bench-rx:{b}"].timestamp() - t for b, t in committed.items()], written


def steady(lags: list[float]) -> tuple[float, float]:
    """p50 (ms) of the first and of the last fifth of a phase: equal when the lag is steady,
    the last far above the first when a backlog grows."""
    fifth = max(1, len(lags) // 5)
    return (round(percentile(lags[:fifth], 50) * 1000, 1),
            round(percentile(lags[-fifth:], 50) * 1000, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200, help="commits per second")
    parser.add_argument("--seconds", type=float, default=5, help="per phase (4 phases)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    options = parser.parse_args()

    from reactive.embedded import RedisServer

    redis = RedisServer(scratch_dir("reactive-bench-redis-") / "data", fast=True)
    redis.start()
    with database("reactive_bench_reactions") as db_url:
        os.environ.update({"DATABASE_URL": db_url, "REDIS_URL": redis.url,
                           "DJANGO_SETTINGS_MODULE": "tests.settings"})  # fmt: skip
        import django

        django.setup()
        from reactive.models import Reaction
        from tests.celery_app import app

        app.conf.broker_url = redis.url
        worker = start_worker(db_url, redis.url, options.concurrency, dispatcher=True)
        try:
            deadline = time.monotonic() + 60
            while not Reaction.objects.filter(name="testapp:bench_reaction").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker's dispatcher never created the reaction row")
                time.sleep(0.1)
            lags: dict[str, list[float]] = {"reaction": [], "on_commit": []}
            trend: dict[str, list[tuple[float, float]]] = {"reaction": [], "on_commit": []}
            rates: list[float] = []
            phase("on_commit", 50, 1)  # warm-up
            phase("reaction", 50, 1)
            for kind in ("reaction", "on_commit", "on_commit", "reaction"):
                log(f"phase: {kind} at {options.rate}/s for {options.seconds}s")
                found, written = phase(kind, options.rate, options.seconds)
                lags[kind] += found
                trend[kind].append(steady(found))
                rates.append(round(written, 1))
                log(f"  written at {written:.1f}/s; p50 first/last fifth {trend[kind][-1]} ms")
        finally:
            worker.terminate()
            worker.wait(30)
    redis.stop()

    def ms(kind: str, pct: float) -> float:
        return round(percentile(lags[kind], pct) * 1000, 1)

    emit({
        "benchmark": "reaction_lag",
        "rate_per_s": options.rate,
        "changes_per_side": len(lags["reaction"]),
        "reaction_p50_ms": ms("reaction", 50),
        "reaction_p99_ms": ms("reaction", 99),
        "on_commit_p50_ms": ms("on_commit", 50),
        "on_commit_p99_ms": ms("on_commit", 99),
        "p50_ratio": round(ms("reaction", 50) / ms("on_commit", 50), 2),
        "p99_ratio": round(ms("reaction", 99) / ms("on_commit", 99), 2),
        "reaction_p50_first_last_fifth_ms": trend["reaction"],
        "on_commit_p50_first_last_fifth_ms": trend["on_commit"],
        "written_per_s": rates,
        "worker": f"prefork x{options.concurrency}",
    })  # fmt: skip


if __name__ == "__main__":
    main()
