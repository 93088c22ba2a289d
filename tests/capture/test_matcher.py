"""The read-set index: precision (a write matches only the subscriptions it can affect), the
index (one change among 10,000 keys checks a handful of predicates), and the value comparisons
between change-log JSON and ORM parameters, which must never narrow."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet

from reactive.capture.matcher import Change, Matcher
from reactive.capture.readsets import Condition, ReadSet, TablePredicate, predicates_for, recording
from tests.support.changelog import changes_after, last_change_id
from tests.testapp.models import Account, Item, Note, Sample

C = Condition
NOTE, ITEM, SAMPLE = "testapp_note", "testapp_item", "testapp_sample"


def read_set(qs: QuerySet[Any]) -> ReadSet:
    with transaction.atomic(), recording(connection) as recorder:
        list(qs)
    return recorder.read_set()


def one(table: str, *conds: Condition) -> ReadSet:
    return ReadSet(frozenset({TablePredicate(table, conds)}))


def insert(table: str, **row: Any) -> Change:
    return Change(table, "I", None, row)


def matches(read_set: ReadSet, *changes: Change) -> bool:
    matcher = Matcher()
    matcher.set("q", read_set)
    return matcher.match(changes) == {"q"}


class CountingMatcher(Matcher):
    """Counts full predicate checks: the index must keep them O(matches)."""

    checks = 0

    def _satisfies(self, predicate: TablePredicate, row: Mapping[str, Any]) -> bool:
        self.checks += 1
        return super()._satisfies(predicate, row)


# -- precision and the index on a real database --------------------------------------------


@pytest.fixture
def channels() -> Matcher:
    """100 subscriptions ``Note.objects.filter(body=f"channel-{i}")``, read sets recorded from
    the SQL Django executed."""
    matcher = Matcher()
    for i in range(100):
        matcher.set(i, read_set(Note.objects.filter(body=f"channel-{i}").order_by("-id")[:50]))
    return matcher


@pytest.mark.django_db(transaction=True)
def test_a_write_to_one_channel_matches_only_that_channel(channels: Matcher) -> None:
    # When a note is posted to channel 7
    mark = last_change_id()
    note = Note.objects.create(body="channel-7")
    # Then only channel 7's subscription is invalidated
    assert channels.match(changes_after(mark, [NOTE])) == {7}

    # When it moves to channel 3: both the old and the new channel
    mark = last_change_id()
    Note.objects.filter(pk=note.pk).update(body="channel-3")
    assert channels.match(changes_after(mark, [NOTE])) == {3, 7}

    # When it is deleted, and when a note outside every channel is written: only channel 3,
    # then nothing
    mark = last_change_id()
    note.delete()
    assert channels.match(changes_after(mark, [NOTE])) == {3}
    mark = last_change_id()
    Note.objects.create(body="elsewhere")
    assert channels.match(changes_after(mark, [NOTE])) == set()

    # When the table is truncated: every channel
    mark = last_change_id()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE testapp_note CASCADE")
    assert channels.match(changes_after(mark, [NOTE])) == set(range(100))


def test_one_change_among_10000_keys_checks_only_its_bucket() -> None:
    # Given 10,000 subscriptions bound from one SQL template, and one catch-all on another table
    sql = 'SELECT "testapp_note"."id" FROM "testapp_note" WHERE "testapp_note"."body" = %s'
    matcher = CountingMatcher()
    for i in range(10_000):
        rs = predicates_for(sql, [f"channel-{i}"])
        assert rs is not None
        matcher.set(i, rs)
    matcher.set("items", one(ITEM))

    # When one row changes in channel 4242
    hit = matcher.match([Change(NOTE, "U", {"id": 1, "body": "channel-4242"},
                                {"id": 1, "body": "channel-4242"})])

    # Then one key matches, after a couple of predicate checks rather than 10,000
    assert hit == {4242}
    assert matcher.checks <= 2
    assert len(matcher) == 10_001

    # And removing keys takes them out of the index
    matcher.remove(4242)
    assert matcher.match([insert(NOTE, id=2, body="channel-4242")]) == set()
    assert 4242 not in matcher
    assert matcher.match([insert(ITEM, id=1)]) == {"items"}


def test_set_replaces_a_keys_previous_read_set() -> None:
    matcher = Matcher()
    matcher.set("q", one(NOTE, C("body", "eq", ("a",))))
    matcher.set("q", one(NOTE, C("body", "eq", ("b",))))
    assert matcher.match([insert(NOTE, body="a")]) == set()
    assert matcher.match([insert(NOTE, body="b")]) == {"q"}


def test_truncate_everything_and_whole_table_reads() -> None:
    matcher = Matcher()
    matcher.set("note-a", one(NOTE, C("body", "eq", ("a",))))
    matcher.set("all-items", one(ITEM))
    matcher.set("any", ReadSet(everything=True))
    assert matcher.match([Change(NOTE, "T", None, None)]) == {"note-a", "any"}
    assert matcher.match([insert(ITEM, id=1)]) == {"all-items", "any"}
    assert matcher.match([insert("other_table", id=1)]) == {"any"}


def test_either_image_of_an_update_matches() -> None:
    rs = one(NOTE, C("body", "eq", ("a",)))
    assert matches(rs, Change(NOTE, "U", {"id": 1, "body": "a"}, {"id": 1, "body": "b"}))
    assert matches(rs, Change(NOTE, "U", {"id": 1, "body": "b"}, {"id": 1, "body": "a"}))
    assert matches(rs, Change(NOTE, "U", None, {"id": 9, "body": "a"}))  # key changed
    assert not matches(rs, Change(NOTE, "U", {"id": 1, "body": "b"}, {"id": 1, "body": "c"}))


# -- comparing change-log JSON with ORM parameters -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_values_from_the_log_compare_with_orm_parameters() -> None:
    # Given subscriptions on a datetime range, a decimal and a boolean, recorded from the ORM
    when = datetime.datetime(2024, 3, 1, 12, tzinfo=datetime.UTC)
    since = read_set(Sample.objects.filter(at__gte=when))
    price = read_set(Item.objects.filter(price=Decimal("1.5")))
    flagged = read_set(Sample.objects.filter(flag=True))

    # When rows are written, and read back from the log as JSON
    mark = last_change_id()
    Sample.objects.create(num=1, label="x", at=when + datetime.timedelta(microseconds=1),
                          amount=1, flag=False)
    Item.objects.create(name="i", price=Decimal("1.50"))
    later, cheap = changes_after(mark, [SAMPLE, ITEM])
    mark = last_change_id()
    Sample.objects.create(num=1, label="x", at=when - datetime.timedelta(microseconds=1),
                          amount=1, flag=True)
    (earlier,) = changes_after(mark, [SAMPLE])

    # Then the values compare as the database compares them
    assert isinstance(later.new["at"], str)  # type: ignore[index]
    assert matches(since, later)
    assert not matches(since, earlier)
    assert matches(price, cheap)  # 1.50 == 1.5
    assert matches(flagged, earlier)
    assert not matches(flagged, later)


def test_null_never_satisfies_a_comparison_but_satisfies_is_null() -> None:
    row = insert(SAMPLE, id=1, maybe=None)
    assert not matches(one(SAMPLE, C("maybe", "eq", (1,))), row)
    assert not matches(one(SAMPLE, C("maybe", "in", (1, None))), row)
    assert not matches(one(SAMPLE, C("maybe", "lt", (5,))), row)
    assert matches(one(SAMPLE, C("maybe", "isnull")), row)
    assert not matches(one(SAMPLE, C("maybe", "notnull")), row)
    assert matches(one(SAMPLE, C("maybe", "notnull")), insert(SAMPLE, id=1, maybe=0))


def test_text_ranges_are_left_to_the_collation() -> None:
    # 'B' < 'a' in Python, not in most collations: never decided in Python
    assert matches(one(ITEM, C("name", "gt", ("a",))), insert(ITEM, id=1, name="B"))


@pytest.mark.django_db(transaction=True)
def test_json_column_equality_is_never_decided_by_python() -> None:
    # Given a query on a JSON column's whole value (the parameter is a psycopg Jsonb wrapper)
    scalar = read_set(Item.objects.filter(data="abc"))
    document = read_set(Item.objects.filter(data={"a": 1}))
    # When rows with those values are written
    mark = last_change_id()
    Item.objects.create(name="s", price=1, data="abc")
    Item.objects.create(name="d", price=1, data={"a": 1})
    changes = changes_after(mark, [ITEM])
    # Then both match
    assert matches(scalar, changes[0])
    assert matches(document, changes[1])


def test_a_column_missing_from_the_row_matches() -> None:
    rs = one(ITEM, C("no_such_column", "eq", (1,)))
    assert matches(rs, insert(ITEM, id=1, name="a"))
    rs = one(ITEM, C("no_such_column", "gt", (1,)))
    assert matches(rs, insert(ITEM, id=1, name="a"))


def test_parameters_of_another_kind_than_the_column_match() -> None:
    row = insert(SAMPLE, id=1, num=1, at="2024-01-01T00:00:00+00:00")
    # an int column compared with 1.5 (raw SQL): 1 < 1.5 in Postgres; never round 1.5 to 1
    assert matches(one(SAMPLE, C("num", "lt", (1.5,))), row)
    assert matches(one(SAMPLE, C("num", "in", (1.0,))), row)
    # a timestamptz column compared with a naive datetime or a date: the session time zone
    # decides in Postgres
    naive = datetime.datetime(2024, 1, 1)
    assert matches(one(SAMPLE, C("at", "eq", (naive,))), row)
    assert matches(one(SAMPLE, C("at", "le", (datetime.date(2024, 1, 1),))), row)
    # a string parameter is converted the way Postgres converts an untyped literal
    assert matches(one(SAMPLE, C("num", "eq", ("1",))), row)
    assert matches(one(SAMPLE, C("at", "eq", ("2024-01-01 00:00:00+00",))), row)
    assert not matches(one(SAMPLE, C("num", "eq", ("2",))), row)


def test_integer_and_decimal_parameters_hash_alike() -> None:
    assert matches(one(Account._meta.db_table, C("balance", "eq", (Decimal("5.0"),))),
                   insert(Account._meta.db_table, id=1, balance=5))
    assert matches(one(ITEM, C("price", "in", (2, Decimal("3.10")))),
                   insert(ITEM, id=1, price=Decimal("3.1")))
    assert not matches(one(ITEM, C("price", "in", (2, Decimal("3.10")))),
                       insert(ITEM, id=1, price=Decimal("3.2")))


def test_tables_without_a_model_compare_conservatively() -> None:
    assert matches(one("legacy", C("a", "eq", (1,))), insert("legacy", a="1"))
    assert matches(one("legacy", C("a", "lt", (1,))), insert("legacy", a=5))
