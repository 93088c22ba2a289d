"""Each class of read or write that once left a live query silently stale: the write's real
change rows must match the query's resolved read set (or the query is refused loudly)."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import JSONField, Value
from django.test import override_settings

from reactive import query
from reactive.capture.catalog import ColumnType
from reactive.capture.matcher import Change, Matcher
from reactive.capture.readsets import Condition, ReadSet, TablePredicate, recording
from reactive.capture.resolve import resolve
from reactive.exceptions import DefinitionError
from reactive.functions import untracked
from reactive.functions.registry import registry
from reactive.functions.runtime import Call, Runtime
from reactive.functions.snapshots import run_read_only
from reactive.types import ANONYMOUS
from tests.support.changelog import changes_after, dsn, last_change_id
from tests.testapp.models import Legacy, Shape, ShapeView

pytestmark = pytest.mark.django_db(transaction=True)
PARIS = ZoneInfo("Europe/Paris")


def read(run: Callable[[], Any]) -> tuple[Any, ReadSet]:
    """Run ``run`` as the Reactor would: recorded, then resolved against the catalog."""
    with transaction.atomic(), recording(connection) as recorder:
        result = run()
    with connection.cursor() as cursor:
        return result, resolve(recorder.read_set(), cursor).read_set


def matched(read_set: ReadSet, write: Callable[[], Any]) -> bool:
    mark = last_change_id()
    write()
    matcher = Matcher()
    matcher.set("q", read_set)
    return "q" in matcher.match(changes_after(mark))


def sql(text: str, params: list[Any] | None = None, *, setup: str = "") -> None:
    """Run ``text`` on another program's connection (optionally after ``setup``)."""
    with psycopg.connect(dsn(), autocommit=True) as other:
        if setup:
            other.execute(setup)
        other.execute(text, params)


def count(qs: Any) -> Callable[[], int]:
    return lambda: qs.count()


# -- values: compared as Postgres compares them ----------------------------------------------


def test_a_json_null_row_matches_is_not_null() -> None:
    result, rs = read(count(Shape.objects.filter(payload__isnull=False)))
    assert result == 0
    assert matched(rs, lambda: sql("INSERT INTO testapp_shape (payload, weight, price, tags, "
                                   "handle) VALUES ('null'::jsonb, 0, 0, '{}', '')"))
    assert matched(rs, lambda: Shape.objects.create(payload=Value(None, JSONField())))
    assert Shape.objects.filter(payload__isnull=False).count() == 2  # Postgres agrees


def test_an_ambiguous_dst_local_time_matches_its_instant() -> None:
    # 02:30 on 2024-10-27 happens twice in Paris; make_aware picks the first (+02:00)
    at = datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS)
    result, rs = read(count(Shape.objects.filter(at=at)))
    assert result == 0
    assert matched(rs, lambda: sql("INSERT INTO testapp_shape (at, weight, price, tags, handle) "
                                   "VALUES ('2024-10-27 02:30:00+02', 0, 0, '{}', '')",
                                   setup="SET TIME ZONE 'America/New_York'"))
    assert Shape.objects.filter(at=at).count() == 1


def test_a_float_written_with_extra_float_digits_0_is_logged_exactly() -> None:
    result, rs = read(count(Shape.objects.filter(weight__gt=0.3)))
    assert result == 0
    just_above = 0.1 + 0.2  # 0.30000000000000004: 15 digits round it to 0.3
    assert matched(rs, lambda: sql("INSERT INTO testapp_shape (weight, price, tags, handle) "
                                   "VALUES (%s, 0, '{}', '')", [just_above],
                                   setup="SET extra_float_digits = 0"))
    assert Shape.objects.filter(weight__gt=0.3).count() == 1


def test_citext_equality_is_left_to_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citext'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL server has no citext extension")
    Shape.objects.create(handle="Trinity")
    result, rs = read(count(Shape.objects.filter(handle="Neo")))
    assert result == 0
    assert matched(rs, lambda: sql("UPDATE testapp_shape SET handle = 'neo'"))
    assert Shape.objects.filter(handle="Neo").count() == 1


@pytest.mark.parametrize("column_type", [ColumnType("citext"), ColumnType("text", False)])
def test_case_insensitive_column_types_never_compare_in_python(column_type: ColumnType) -> None:
    # Given the catalog says the column is citext, or text with a non-deterministic collation
    matcher = Matcher({("testapp_shape", "handle"): column_type})
    matcher.set("q", ReadSet(frozenset({TablePredicate("testapp_shape", (
        Condition("handle", "eq", ("Neo",)),))})))
    # Then a row whose handle differs only in case matches
    assert matcher.match([Change("testapp_shape", "U", {"handle": "x"}, {"handle": "neo"})])
    # And with plain text, it does not
    plain = Matcher({("testapp_shape", "handle"): ColumnType("text")})
    plain.set("q", ReadSet(frozenset({TablePredicate("testapp_shape", (
        Condition("handle", "eq", ("Neo",)),))})))
    assert not plain.match([Change("testapp_shape", "U", {"handle": "x"}, {"handle": "neo"})])


def test_decimal_uuid_and_array_filters_match_their_writes() -> None:
    Shape.objects.create(price=Decimal("1.0000"), tags=[1, 2])
    cases: list[tuple[Any, Callable[[], Any]]] = [
        (Shape.objects.filter(price__gt=Decimal("1.2345")),
         lambda: sql("UPDATE testapp_shape SET price = 1.2346")),
        (Shape.objects.filter(tags__contains=[3]),
         lambda: Shape.objects.update(tags=[3])),
        (Shape.objects.filter(uid=uuid.UUID("6f1c7e6e-8d3a-4f7e-9a51-2a4f4b0c9d11")),
         lambda: sql("UPDATE testapp_shape SET uid = '6F1C7E6E-8D3A-4F7E-9A51-2A4F4B0C9D11'")),
    ]
    for qs, write in cases:
        before, rs = read(count(qs))
        assert matched(rs, write)
        assert qs.count() != before  # the write did change the result


# -- reads the SQL text does not show ---------------------------------------------------------


def raw(text: str, params: list[Any] | None = None) -> Callable[[], Any]:
    def run() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(text, params)
            return cursor.fetchall()
    return run


def test_a_nested_view_depends_on_its_base_tables() -> None:
    _, rs = read(raw("SELECT count(*) FROM testapp_heavy_view"))
    assert rs.tables() == {"testapp_shape", "testapp_legacy"}
    assert matched(rs, lambda: Shape.objects.create(weight=0.9))
    assert matched(rs, lambda: sql("INSERT INTO testapp_legacy (name, size) VALUES ('x', 1)"))


def test_an_unmanaged_model_over_a_view_depends_on_its_base_tables() -> None:
    _, rs = read(lambda: list(ShapeView.objects.filter(handle="a")))
    assert rs.tables() == {"testapp_shape", "testapp_legacy"}
    assert matched(rs, lambda: Legacy.objects.create(name="y", size=2))


def test_sql_functions_are_read_for_their_tables() -> None:
    _, scalar = read(raw("SELECT testapp_heavy_count(%s)", [0.5]))
    _, rows = read(raw("SELECT * FROM testapp_legacy_rows()"))
    _, nested = read(raw("SELECT testapp_nested_count()"))
    assert scalar.tables() == {"testapp_shape"} and not scalar.everything
    assert rows.tables() == {"testapp_legacy"} and not rows.everything
    assert nested.tables() == {"testapp_shape", "testapp_legacy"} and not nested.everything
    assert matched(scalar, lambda: Shape.objects.create(weight=1.0))
    assert matched(rows, lambda: sql("INSERT INTO testapp_legacy (name, size) VALUES ('z', 3)"))


def test_a_function_whose_body_cannot_be_read_widens_to_everything() -> None:
    _, rs = read(raw("SELECT testapp_plpgsql_count()"))
    assert rs.everything
    _, unknown = read(raw("SELECT count(*) FROM testapp_shape WHERE weight > random()"))
    assert not unknown.everything  # a system function reads no table


def test_a_read_on_the_raw_psycopg_connection_is_recorded() -> None:
    def bypass() -> Any:
        with connection.connection.cursor() as cursor:
            cursor.execute("SELECT name FROM testapp_legacy WHERE size = %s", [7])
            return cursor.fetchall()

    _, rs = read(bypass)
    assert rs.tables() == {"testapp_legacy"}
    assert matched(rs, lambda: Legacy.objects.create(name="q", size=7))
    assert not matched(rs, lambda: Legacy.objects.create(name="q", size=8))
    # the raw connection's cursor classes are restored afterwards
    assert "Watched" not in connection.connection.cursor_factory.__name__


# -- writes that bypass the usual paths --------------------------------------------------------


def test_an_unmanaged_model_over_a_real_table_is_tracked() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = "
                       "'testapp_legacy'::regclass AND tgname LIKE 'reactive%%'")
        assert sorted(cursor.fetchall()) == [("reactive_del", "A"), ("reactive_ins", "A"),
                                             ("reactive_trunc", "A"), ("reactive_upd", "A")]
    _, rs = read(count(Legacy.objects.filter(size=1)))
    assert matched(rs, lambda: sql("INSERT INTO testapp_legacy (name, size) VALUES ('a', 1)"))


def test_a_replication_role_writer_is_captured() -> None:
    _, rs = read(count(Shape.objects.filter(weight=2.0)))
    assert matched(rs, lambda: sql("INSERT INTO testapp_shape (weight, price, tags, handle) "
                                   "VALUES (2.0, 0, '{}', '')",
                                   setup="SET session_replication_role = replica"))


# -- untracked tables: refused, or run with a warning where the user opts in -----------------


@pytest.fixture
def permission_queries() -> Iterator[tuple[str, str]]:
    refused = query(name="soundness:perm_refused")(lambda ctx: Permission.objects.count())
    warned = query(name="soundness:perm_warned", untracked_reads="warn")(
        lambda ctx: Permission.objects.count())
    for definition in (refused, warned):
        registry.register(definition)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reactive_untrackedread")
    untracked.forget()
    yield refused.name, warned.name
    for definition in (refused, warned):
        registry.unregister(definition.name)


def evaluate(name: str) -> Any:
    """Evaluate as a Reactor round does: inside one read-only snapshot."""
    runtime = Runtime()
    return run_read_only(lambda: runtime.evaluate(Call(name, {}, ANONYMOUS)).outcome,
                         function="<test round>")


def test_a_query_reading_an_untracked_table_is_refused(permission_queries: Any) -> None:
    refused, _ = permission_queries
    outcome = evaluate(refused)
    assert outcome.code == "UntrackedRead"
    assert "auth_permission" in outcome.error


def test_opted_in_untracked_reads_warn_once_per_function(
    permission_queries: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refused, warned = permission_queries
    with caplog.at_level(logging.WARNING, logger="reactive.functions.untracked"):
        outcomes = [evaluate(warned) for _ in range(3)]
    assert all(o.ok for o in outcomes)
    warnings = [r for r in caplog.records if "auth_permission" in r.getMessage()]
    assert len(warnings) == 1 and warned in warnings[0].getMessage()
    with override_settings(REACTIVE={"UNTRACKED_READS": "warn"}):
        assert evaluate(refused).ok


def test_reactive_functions_check_lists_untracked_reads(permission_queries: Any) -> None:
    refused, warned = permission_queries
    out = StringIO()
    call_command("reactive_functions", "--check", stdout=out)  # nothing seen yet: passes
    evaluate(warned)
    call_command("reactive_functions", "--check", stdout=out)  # warned only: passes
    evaluate(refused)
    with pytest.raises(CommandError, match="1 function"):
        call_command("reactive_functions", "--check", stdout=out)
    text = out.getvalue()
    assert f"refuse  {refused}  auth_permission" in text
    assert f"warn    {warned}  auth_permission" in text


def test_bad_untracked_reads_options_are_refused() -> None:
    with pytest.raises(DefinitionError, match="untracked_reads='maybe'"):
        query(untracked_reads="maybe")(lambda: None)
    from reactive import mutation
    with pytest.raises(DefinitionError, match="queries only"):
        mutation(untracked_reads="warn")(lambda: None)
    from reactive.conf import validate
    assert any("UNTRACKED_READS" in p for p in validate({"UNTRACKED_READS": "sometimes"}))


@pytest.mark.django_db(transaction=True)
def test_a_model_over_a_materialized_view_is_reported_by_W010() -> None:
    from django.apps import apps
    from django.db import models

    from reactive.checks import check_untrackable_tables

    # Given an unmanaged model whose table is a materialized view (it changes on REFRESH, and
    # no trigger can see that), next to the ordinary tables and plain views that are fine
    with connection.cursor() as cursor:
        cursor.execute("CREATE MATERIALIZED VIEW testapp_note_totals AS "
                       "SELECT 1 AS id, count(*) AS notes FROM testapp_note")
    try:
        class NoteTotals(models.Model):
            notes = models.IntegerField()

            class Meta:
                app_label = "testapp"
                managed = False
                db_table = "testapp_note_totals"

            def __str__(self) -> str:
                return str(self.notes)

        # When the database checks run
        messages = check_untrackable_tables(databases=["default"])
    finally:
        apps.all_models["testapp"].pop("notetotals", None)
        apps.clear_cache()
        with connection.cursor() as cursor:
            cursor.execute("DROP MATERIALIZED VIEW testapp_note_totals")
    # Then only that model is reported, with what to do about it
    assert [m.id for m in messages] == ["reactive.W010"]
    assert "testapp.NoteTotals" in messages[0].msg
    assert "materialized view" in messages[0].msg
    assert "UNTRACKED_MODELS" in (messages[0].hint or "")
