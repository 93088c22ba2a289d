"""The soundness property over the value shapes where Python and Postgres disagree (JSON null,
DST instants, floats, decimals, UUIDs, arrays) and the reads SQL text hides (views, SQL
functions, an unmanaged table), under every write path, a replication-role writer included."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import JSONField, Value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive.capture.matcher import Matcher
from reactive.capture.readsets import recording
from reactive.capture.resolve import resolve
from tests.capture.test_readset_soundness import EXAMPLES
from tests.support.changelog import changes_after, dsn, last_change_id
from tests.testapp.models import Legacy, Shape, ShapeView

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(1800)]
PARIS = ZoneInfo("Europe/Paris")
# Both 02:30s of the 2024 fall-back, the hour around them, and a spring-forward neighbour.
ATS = [datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS),
       datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS),
       datetime.datetime(2024, 10, 27, 0, 30, tzinfo=datetime.UTC),
       datetime.datetime(2024, 3, 31, 3, 30, tzinfo=PARIS), None]
WEIGHTS = [0.3, 0.1 + 0.2, 0.0, 1e-300, 2.5]
PRICES = [Decimal("1.2345"), Decimal("1.2346"), Decimal("0")]
UIDS = [uuid.UUID(int=1), uuid.UUID(int=2), None]
PAYLOADS = ["sql-null", "json-null", {"a": 1}, {"a": {"b": None}}, [1, None]]

ROW = st.fixed_dictionaries({
    "payload": st.sampled_from(PAYLOADS), "weight": st.sampled_from(WEIGHTS),
    "price": st.sampled_from(PRICES), "at": st.sampled_from(ATS), "uid": st.sampled_from(UIDS),
    "tags": st.lists(st.integers(0, 3), max_size=2)})
QUERIES = st.one_of(
    st.tuples(st.just("payload__isnull"), st.booleans()),
    st.tuples(st.just("payload__a"), st.sampled_from([1, None])),
    st.tuples(st.sampled_from(["weight__gt", "weight__lte", "weight"]), st.sampled_from(WEIGHTS)),
    st.tuples(st.sampled_from(["price__gt", "price"]), st.sampled_from(PRICES)),
    st.tuples(st.sampled_from(["at", "at__lt", "at__gte"]), st.sampled_from(ATS[:4])),
    st.tuples(st.just("uid"), st.sampled_from(UIDS[:2])),
    st.tuples(st.just("tags__contains"), st.lists(st.integers(0, 3), max_size=1)),
    st.tuples(st.sampled_from(["view", "heavy_view", "function", "legacy", "legacy_rows"]),
              st.just(None)),
)
WRITES = st.one_of(
    st.tuples(st.sampled_from(["create", "raw_lossy", "replica"]), ROW),
    st.tuples(st.just("bulk_create"), st.lists(ROW, min_size=1, max_size=2)),
    st.tuples(st.just("update"), QUERIES, ROW),
    st.tuples(st.just("legacy"), st.integers(0, 3)),
)


def evaluate(q: tuple[str, Any]) -> Any:
    name, value = q
    with connection.cursor() as cursor:
        if name in ("view", "heavy_view"):
            table = "testapp_shape_view" if name == "view" else "testapp_heavy_view"
            cursor.execute(f"SELECT id, weight, name FROM {table} ORDER BY 1, 3")
            return cursor.fetchall()
        if name in ("function", "legacy_rows"):
            cursor.execute("SELECT testapp_heavy_count(%s)" if name == "function"
                           else "SELECT name, size FROM testapp_legacy_rows() ORDER BY 1, 2",
                           [0.3] if name == "function" else None)
            return cursor.fetchall()
    if name == "legacy":
        return sorted(Legacy.objects.filter(size__lt=2).values_list("name", "size"))
    qs = Shape.objects.filter(**{name: value}) if name != "payload__isnull" else \
        Shape.objects.filter(payload__isnull=value)
    return sorted(qs.values_list("pk", flat=True))


def _value(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    payload = out.pop("payload")
    out["payload"] = (None if payload == "sql-null" else
                      Value(None, JSONField()) if payload == "json-null" else payload)
    return out


def _raw(row: dict[str, Any], setup: str) -> None:
    payload = row["payload"]
    text = None if payload == "sql-null" else "null" if payload == "json-null" else \
        psycopg.types.json.Jsonb(payload)
    with psycopg.connect(dsn(), autocommit=True) as other:
        other.execute(setup)
        other.execute("INSERT INTO testapp_shape (payload, weight, price, at, uid, tags, handle) "
                      "VALUES (%s::jsonb, %s, %s, %s, %s, %s, '')",
                      [text, row["weight"], row["price"], row["at"], row["uid"], row["tags"]])


def apply(write: tuple[Any, ...]) -> None:
    kind, *args = write
    if kind == "create":
        Shape.objects.create(**_value(args[0]))
    elif kind == "bulk_create":
        rows = [_value(r) for r in args[0]]
        for r in rows:
            Shape.objects.create(**r)  # bulk_create cannot take expressions; create each
    elif kind == "raw_lossy":
        _raw(args[0], "SET extra_float_digits = 0")
    elif kind == "replica":
        _raw(args[0], "SET session_replication_role = replica")
    elif kind == "update":
        (name, value), row = args
        if name in ("view", "heavy_view", "function", "legacy", "legacy_rows"):
            return
        Shape.objects.filter(**{name: value}).update(**{k: v for k, v in _value(row).items()
                                                       if k != "payload"})
    else:
        Legacy.objects.create(name=f"l{args[0]}", size=args[0])


def test_value_shapes_views_and_functions_never_miss_an_update() -> None:
    assert ShapeView._meta.db_table == "testapp_shape_view"
    tally = {"needed": 0, "spared": 0, "extra": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(initial=st.lists(ROW, max_size=4), queries=st.lists(QUERIES, min_size=1, max_size=3),
           writes=st.lists(WRITES, min_size=1, max_size=3))
    def scenario(initial: list[dict[str, Any]], queries: list[tuple[str, Any]],
                 writes: list[tuple[Any, ...]]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM testapp_shape; DELETE FROM testapp_legacy")
        for row in initial:
            Shape.objects.create(**_value(row))
        for write in writes:
            matcher, before = Matcher(), {}
            for i, q in enumerate(queries):
                with transaction.atomic(), recording(connection) as recorder:
                    before[i] = evaluate(q)
                with connection.cursor() as cursor:
                    matcher.set(i, resolve(recorder.read_set(), cursor).read_set)
            mark = last_change_id()
            apply(write)
            changes = changes_after(mark)
            hit = matcher.match(changes)
            for i, q in enumerate(queries):
                if evaluate(q) != before[i]:
                    tally["needed"] += 1
                    assert i in hit, f"missed update query={q} write={write} changes={changes}"
                else:
                    tally["extra" if i in hit else "spared"] += 1

    scenario()
    print(f"value-shape soundness tally: {tally}")
    assert tally["needed"] >= 50
