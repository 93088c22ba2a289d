"""Data migration rows/s against a plain QuerySet.update loop and a plain per-row save loop,
in the same run, on the same rows.

``--rows`` Sample rows with ``maybe`` null are migrated three times (each side resets them):

- **migration**: ``testapp:fill_maybe`` (``@migration``, per-row ``save()``) run inline with
  ``--batch-size``: one SERIALIZABLE transaction per batch that also moves the cursor, plus the
  final pass;
- **update loop**: ``Sample.objects.filter(pk__in=batch).update(...)`` per batch of the same
  size, each in its own transaction (what a hand-written backfill does);
- **save loop**: the same per-row ``save()`` as the migration, a plain ``atomic()`` per batch.

Prints one JSON line; ratios are migration / baseline.
"""

from __future__ import annotations

import argparse
import os
import time

from _common import database, emit, log


def reset(rows: int) -> None:
    import datetime
    from decimal import Decimal

    from tests.testapp.models import Sample

    Sample.objects.all().delete()
    at = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    Sample.objects.bulk_create(
        (Sample(num=i, label="x", at=at, amount=Decimal("1.00")) for i in range(rows)),
        batch_size=5000,
    )


def run_migration(batch: int) -> float:
    from reactive.datamigrations import runner
    from reactive.models import DataMigration

    DataMigration.objects.filter(name="testapp:fill_maybe").delete()
    began = time.perf_counter()
    runner.start("testapp:fill_maybe", batch_size=batch)
    state = runner.run("testapp:fill_maybe")
    assert state == "done", state
    return time.perf_counter() - began


def run_update_loop(batch: int) -> float:
    from django.db import transaction
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    from tests.testapp.models import Sample

    began = time.perf_counter()
    pks = list(Sample.objects.filter(maybe__isnull=True).order_by("pk")
               .values_list("pk", flat=True))
    for start in range(0, len(pks), batch):
        with transaction.atomic():
            Sample.objects.filter(pk__in=pks[start : start + batch], maybe__isnull=True).update(
                maybe=F("num") * 2, label=Concat(F("label"), Value("+")))
    return time.perf_counter() - began


def run_save_loop(batch: int) -> float:
    from django.db import transaction

    from tests.testapp.models import Sample

    began = time.perf_counter()
    last = 0
    while True:
        with transaction.atomic():
            rows = list(Sample.objects.filter(maybe__isnull=True, pk__gt=last)
                        .order_by("pk")[:batch])
            for row in rows:
                row.maybe = row.num * 2
                row.label += "+"
                row.save(update_fields=["maybe", "label"])
        if not rows:
            break
        last = rows[-1].pk
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    options = parser.parse_args()
    with database("reactive_bench_datamigration") as db_url:
        os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "tests.settings"})
        import django

        django.setup()
        from tests.testapp.models import Sample

        sides = {"migration": run_migration, "update_loop": run_update_loop,
                 "save_loop": run_save_loop}
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for name in ("migration", "update_loop", "save_loop", "save_loop", "update_loop",
                     "migration"):
            reset(options.rows)
            log(f"phase: {name} ({options.rows} rows, batches of {options.batch_size})")
            seconds[name].append(sides[name](options.batch_size))
            assert Sample.objects.filter(label="x+").count() == options.rows, name
    rate = {name: round(options.rows * len(s) / sum(s)) for name, s in seconds.items()}
    emit({
        "benchmark": "data_migration_rate",
        "rows": options.rows,
        "batch_size": options.batch_size,
        "migration_rows_per_s": rate["migration"],
        "update_loop_rows_per_s": rate["update_loop"],
        "save_loop_rows_per_s": rate["save_loop"],
        "ratio_vs_update_loop": round(rate["migration"] / rate["update_loop"], 3),
        "ratio_vs_save_loop": round(rate["migration"] / rate["save_loop"], 3),
    })  # fmt: skip


if __name__ == "__main__":
    main()
