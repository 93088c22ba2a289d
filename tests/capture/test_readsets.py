"""Read sets of the SQL Django really executes (recorded with ``recording()``), and of raw SQL.

The rule under test: a recorded predicate may be wider than what the query read, never
narrower. So conditions appear only where the SQL is a plain conjunction of comparisons on
a table that cannot be null-extended; OR, NOT, functions and outer joins widen.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum, Value
from django.db.models.functions import Upper
from psycopg import sql

from reactive.capture.readsets import Condition, ReadSet, predicates_for, recording
from tests.testapp.models import Attachment, Item, Note, Sample

pytestmark = pytest.mark.django_db(transaction=True)

C = Condition
ITEM, USER, ATTACHMENT = "testapp_item", "auth_user", "testapp_attachment"


def read_set(query: Any) -> ReadSet:
    """Evaluate a queryset (or call a function) in a transaction and return its read set."""
    with transaction.atomic(), recording(connection) as recorder:
        if callable(query):
            query()
        else:
            list(query)
    return recorder.read_set()


def conditions(rs: ReadSet, table: str) -> set[frozenset[Condition]]:
    """The recorded predicates of ``table``, each as a set of conditions (empty: every row)."""
    return {frozenset(p.conditions) for p in rs.predicates if p.table == table}


def only(*conds: Condition) -> set[frozenset[Condition]]:
    return {frozenset(conds)}


EVERY_ROW: set[frozenset[Condition]] = {frozenset()}


def raw(text: str, params: Any = None) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            if params is None:
                cursor.execute(text)
            else:
                cursor.execute(text, params)

    return run


# -- comparisons the ORM generates ---------------------------------------------------------


def test_equality_and_comparisons_are_bound_to_their_parameters() -> None:
    rs = read_set(Item.objects.filter(name="a", price__lt=3, price__gte=Decimal("1.5")))
    assert not rs.everything
    assert rs.tables() == {ITEM}
    assert conditions(rs, ITEM) == only(
        C("name", "eq", ("a",)), C("price", "lt", (Decimal(3),)),
        C("price", "ge", (Decimal("1.5"),)),
    )


def test_in_range_and_strict_comparisons_are_bound() -> None:
    assert conditions(read_set(Item.objects.filter(pk__in=[3, 1, 2])), ITEM) == only(
        C("id", "in", (3, 1, 2)))
    assert conditions(read_set(Item.objects.filter(price__range=(1, 5))), ITEM) == only(
        C("price", "ge", (Decimal(1),)), C("price", "le", (Decimal(5),)))
    assert conditions(read_set(Item.objects.filter(price__gt=1, id__lte=9)), ITEM) == only(
        C("price", "gt", (Decimal(1),)), C("id", "le", (9,)))


def test_isnull_and_is_not_null_keep_their_sense() -> None:
    assert conditions(read_set(Item.objects.filter(owner__isnull=True)), ITEM) == only(
        C("owner_id", "isnull"))
    assert conditions(read_set(Item.objects.filter(owner__isnull=False)), ITEM) == only(
        C("owner_id", "notnull"))
    assert conditions(read_set(Item.objects.filter(owner=None)), ITEM) == only(
        C("owner_id", "isnull"))


def test_boolean_columns_compare_with_true_and_false() -> None:
    assert conditions(read_set(Sample.objects.filter(flag=True)), "testapp_sample") == only(
        C("flag", "eq", (True,)))
    assert conditions(read_set(Sample.objects.filter(flag=False)), "testapp_sample") == only(
        C("flag", "eq", (False,)))


def test_datetime_uuid_and_foreign_key_parameters_are_bound_as_python_values() -> None:
    when = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    uid = uuid.uuid4()
    user = User.objects.create_user("u")
    rs = read_set(Item.objects.filter(created_at__gte=when, uid=uid, owner=user))
    assert conditions(rs, ITEM) == only(
        C("created_at", "ge", (when,)), C("uid", "eq", (uid,)), C("owner_id", "eq", (user.pk,)))


def test_year_lookup_becomes_a_datetime_range() -> None:
    (conds,) = conditions(read_set(Item.objects.filter(created_at__year=2024)), ITEM)
    assert {(c.column, c.op) for c in conds} == {("created_at", "ge"), ("created_at", "le")}


# -- what must widen -----------------------------------------------------------------------


def test_or_not_and_exclude_widen_to_the_other_conjuncts() -> None:
    assert conditions(read_set(Item.objects.filter(Q(name="a") | Q(name="b"))), ITEM) == EVERY_ROW
    assert conditions(
        read_set(Item.objects.filter(Q(name="a") | Q(name="b"), price=2)), ITEM
    ) == only(C("price", "eq", (Decimal(2),)))
    assert conditions(read_set(Item.objects.exclude(name="a")), ITEM) == EVERY_ROW
    assert conditions(read_set(Item.objects.filter(~Q(price__lt=3), name="n")), ITEM) == only(
        C("name", "eq", ("n",)))
    assert conditions(read_set(Item.objects.filter(name__in=["a"]).exclude(price=1)), ITEM) == (
        only(C("name", "in", ("a",))))


def test_functions_casts_and_pattern_lookups_widen() -> None:
    for qs in (
        Item.objects.filter(name__iexact="A"),
        Item.objects.filter(name__contains="50%"),
        Item.objects.filter(name__startswith="a"),
        Item.objects.filter(created_at__date=datetime.date(2024, 1, 1)),
        Item.objects.annotate(up=Upper("name")).filter(up="A"),
        Item.objects.filter(data__a__startswith="x"),
        Item.objects.filter(price=F("price")),
        Item.objects.filter(name=F("name")),
    ):
        rs = read_set(qs)
        assert conditions(rs, ITEM) == EVERY_ROW, str(qs.query)
        assert not rs.everything


def test_jsonb_key_equality_and_containment_are_kept() -> None:
    # Django's JSONField key lookups: -> / #> with a Jsonb parameter (see capture/jsonpaths.py)
    rs = read_set(Item.objects.filter(data__a=1, data__b__c__in=["x", None],
                                      data__t__contains=["y"]))
    assert conditions(rs, ITEM) == only(C("data", "jeq", (("a",), "1")),
                                        C("data", "jeq", (("b", "c"), '"x"')),  # None: dropped
                                        C("data", "jcontains", (("t",), '["y"]')))


def test_null_parameter_in_equality_is_dropped_not_matched_literally() -> None:
    rs = read_set(raw("SELECT id FROM testapp_item WHERE name = %s AND price = %s", [None, 2]))
    assert conditions(rs, ITEM) == only(C("price", "eq", (2,)))


# -- joins, subqueries, aggregates ---------------------------------------------------------


def test_foreign_key_join_records_both_tables() -> None:
    rs = read_set(Item.objects.filter(owner__username="bob", name="a"))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("a",)))
    assert conditions(rs, USER) == only(C("username", "eq", ("bob",)))


def test_reverse_relation_lookup_records_the_related_table() -> None:
    rs = read_set(Item.objects.filter(attachments__file="x.txt"))
    assert conditions(rs, ITEM) == EVERY_ROW
    assert conditions(rs, ATTACHMENT) == only(C("file", "eq", ("x.txt",)))


def test_select_related_outer_join_reads_the_whole_nullable_side() -> None:
    rs = read_set(Item.objects.select_related("owner").filter(name="a"))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("a",)))
    assert conditions(rs, USER) == EVERY_ROW


def test_filter_on_the_nullable_side_of_an_outer_join_is_not_trusted() -> None:
    # owner__username__isnull=True: LEFT JOIN auth_user ... WHERE auth_user.username IS NULL,
    # which deleting a user (username not null) can make true for its items
    qs = Item.objects.filter(owner__username__isnull=True)
    assert "LEFT OUTER JOIN" in str(qs.query)
    rs = read_set(qs)
    assert conditions(rs, USER) == EVERY_ROW


def test_outer_joins_in_raw_sql_widen_the_nullable_sides() -> None:
    left = read_set(raw(
        "SELECT i.id FROM testapp_item i LEFT JOIN auth_user u "
        "ON (i.owner_id = u.id AND u.is_active) WHERE u.username IS NULL AND i.name = %s", ["a"]))
    assert conditions(left, ITEM) == only(C("name", "eq", ("a",)))
    assert conditions(left, USER) == EVERY_ROW
    right = read_set(raw(
        "SELECT u.id FROM testapp_item i RIGHT JOIN auth_user u ON i.owner_id = u.id "
        "WHERE i.name = %s AND u.username = %s", ["a", "b"]))
    assert conditions(right, ITEM) == EVERY_ROW
    assert conditions(right, USER) == only(C("username", "eq", ("b",)))
    full = read_set(raw(
        "SELECT 1 FROM testapp_item i FULL JOIN auth_user u ON i.owner_id = u.id "
        "WHERE i.name = 'a' AND u.username = 'b'"))
    assert conditions(full, ITEM) == conditions(full, USER) == EVERY_ROW


def test_inner_join_on_conditions_count_as_conjuncts() -> None:
    rs = read_set(raw(
        "SELECT i.id FROM testapp_item i JOIN auth_user u ON (i.owner_id = u.id AND "
        "u.username = %s)", ["bob"]))
    assert conditions(rs, USER) == only(C("username", "eq", ("bob",)))


def test_in_subquery_and_exists_record_the_inner_filters() -> None:
    in_query = read_set(Item.objects.filter(
        pk__in=Attachment.objects.filter(file="z").values("item_id"), name="n"))
    assert conditions(in_query, ITEM) == only(C("name", "eq", ("n",)))
    assert conditions(in_query, ATTACHMENT) == only(C("file", "eq", ("z",)))
    exists = read_set(Item.objects.filter(
        Exists(Attachment.objects.filter(item=OuterRef("pk"), file="y"))))
    assert conditions(exists, ITEM) == EVERY_ROW
    # the correlation U0.item_id = testapp_item.id is not a value: not a condition
    assert conditions(exists, ATTACHMENT) == only(C("file", "eq", ("y",)))
    not_exists = read_set(Item.objects.filter(
        ~Exists(Attachment.objects.filter(item=OuterRef("pk"), file="y"))))
    assert conditions(not_exists, ATTACHMENT) == only(C("file", "eq", ("y",)))


def test_aggregates_keep_where_conditions_and_ignore_having() -> None:
    total = read_set(lambda: Item.objects.filter(name="a").aggregate(total=Sum("price")))
    assert conditions(total, ITEM) == only(C("name", "eq", ("a",)))
    count = read_set(lambda: Item.objects.filter(price__lt=5).count())
    assert conditions(count, ITEM) == only(C("price", "lt", (Decimal(5),)))
    having = read_set(Item.objects.annotate(n=Count("attachments")).filter(n__gt=1))
    assert conditions(having, ITEM) == EVERY_ROW
    assert conditions(having, ATTACHMENT) == EVERY_ROW  # outer joined
    grouped = read_set(Item.objects.filter(name="g").values("price").annotate(n=Count("id")))
    assert conditions(grouped, ITEM) == only(C("name", "eq", ("g",)))


def test_values_ordering_slicing_and_distinct_keep_the_conditions() -> None:
    expected = only(C("name", "eq", ("a",)))
    for query in (
        Item.objects.filter(name="a").values("id", "price"),
        Item.objects.filter(name="a").values_list("price", flat=True).distinct(),
        Item.objects.filter(name="a").order_by("-price", "id")[2:5],
        lambda: Item.objects.filter(name="a")[:3].count(),  # a subquery in FROM
        lambda: Item.objects.filter(name="a").exists(),
        lambda: Item.objects.filter(name="a").first(),
    ):
        assert conditions(read_set(query), ITEM) == expected


def test_iterator_and_prefetch_queries_are_recorded() -> None:
    item = Item.objects.create(name="p", price=1)
    rs = read_set(lambda: list(Item.objects.filter(name="p").iterator(chunk_size=10)))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("p",)))
    prefetch = read_set(Item.objects.filter(name="p").prefetch_related("attachments"))
    assert conditions(prefetch, ATTACHMENT) == only(C("item_id", "in", (item.pk,)))


def test_union_records_both_sides() -> None:
    rs = read_set(Item.objects.filter(name="a").values("id").union(
        Note.objects.filter(body="b").values("id")))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("a",)))
    assert conditions(rs, "testapp_note") == only(C("body", "eq", ("b",)))


def test_raw_querysets_are_parsed() -> None:
    rs = read_set(Item.objects.raw(
        "SELECT * FROM testapp_item WHERE name = %s AND price > %s", ["a", 1]))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("a",)), C("price", "gt", (1,)))


# -- placeholders and quoting --------------------------------------------------------------


def test_placeholders_in_the_select_list_do_not_shift_the_where_parameters() -> None:
    qs = Item.objects.annotate(seven=Value(7)).filter(name="a")
    assert '%s AS "seven"' in qs.query.sql_with_params()[0]
    assert conditions(read_set(qs), ITEM) == only(C("name", "eq", ("a",)))


def test_percent_signs_follow_what_psycopg_sends() -> None:
    # With parameters psycopg turns %% into % everywhere, quoted text included...
    with_params = read_set(raw(
        "SELECT id FROM testapp_item WHERE name = '50%%' AND price = %s", [5]))
    assert conditions(with_params, ITEM) == only(
        C("name", "eq", ("50%",)), C("price", "eq", (5,)))
    like = read_set(raw(
        "SELECT id FROM testapp_item WHERE name LIKE '50%%' AND price = %s", [5]))
    assert conditions(like, ITEM) == only(C("price", "eq", (5,)))
    # ...without parameters the text is sent as it is
    without = read_set(raw("SELECT id FROM testapp_item WHERE name = '50%%'"))
    assert conditions(without, ITEM) == only(C("name", "eq", ("50%%",)))
    # and a Django pattern lookup against an expression ('%%' in the SQL) binds correctly
    qs = Item.objects.filter(name__contains=F("name"), price=3)
    assert "%%" in qs.query.sql_with_params()[0]
    assert conditions(read_set(qs), ITEM) == only(C("price", "eq", (Decimal(3),)))


def test_placeholder_inside_quotes_counts_as_psycopg_counts_it() -> None:
    # psycopg substitutes %s even inside quotes: name = '5' AND price = 7
    rs = read_set(raw("SELECT id FROM testapp_item WHERE name = '%s' AND price = %s", [5, 7]))
    assert rs.everything


def test_unquoted_identifiers_are_folded_to_lower_case_like_postgres() -> None:
    rs = read_set(raw("SELECT ID FROM TestApp_Item WHERE Name = %s", ["a"]))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("a",)))


def test_statements_after_a_set_are_still_read() -> None:
    rs = read_set(raw("SET LOCAL statement_timeout = 0; "
                      "SELECT id FROM testapp_item WHERE name = 'x'"))
    assert conditions(rs, ITEM) == only(C("name", "eq", ("x",)))


def test_composed_sql_widens_to_everything_and_still_runs() -> None:
    query = sql.SQL("SELECT id FROM {} WHERE name = %s").format(sql.Identifier(ITEM))
    assert read_set(raw(query, ["a"])).everything  # type: ignore[arg-type]


def test_executemany_keeps_the_tables_without_parameter_values() -> None:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.executemany("SELECT id FROM testapp_item WHERE name = %s AND price = 1",
                               [["a"], ["b"]])

    assert conditions(read_set(run), ITEM) == only(C("price", "eq", (1,)))


# -- predicates_for on its own -------------------------------------------------------------


def test_transaction_control_reads_nothing() -> None:
    for statement in ('SAVEPOINT "s1_x1"', 'RELEASE SAVEPOINT "s1_x1"', "ROLLBACK", "COMMIT",
                      "SET TIME ZONE 'UTC'", "BEGIN"):
        assert predicates_for(statement, None) is None, statement


def test_unparseable_and_non_query_statements_depend_on_everything() -> None:
    for statement in ("SELEKT ((( nonsense", "INSERT INTO testapp_note (body) VALUES (%s)",
                      "DELETE FROM testapp_note", "SHOW TimeZone; SELECT 1"):
        rs = predicates_for(statement, ["x"])
        assert rs is not None
        assert rs.everything, statement


def test_literals_and_flipped_comparisons() -> None:
    rs = predicates_for(
        "SELECT * FROM t WHERE 3 < t.a AND t.b = 'x' AND t.c = 2.5 AND t.d = TRUE "
        "AND t.e BETWEEN 1 AND %s AND t.f IN (1, %s)", [9, 4])
    assert rs is not None
    assert conditions(rs, "t") == only(
        C("a", "gt", (3,)), C("b", "eq", ("x",)), C("c", "eq", (2.5,)), C("d", "eq", (True,)),
        C("e", "ge", (1,)), C("e", "le", (9,)), C("f", "in", (1, 4)))


def test_negations_operators_collations_and_casts_widen() -> None:
    for where in ("t.a NOT IN (1, 2)", "t.a NOT BETWEEN 1 AND 2", "t.a <> 1", "t.a != 1",
                  "t.a IS DISTINCT FROM 1", "NOT (t.a = 1)", "t.a IS NOT TRUE",
                  "t.a = ANY(%s)", "t.a IN (SELECT 1)", "t.a = t.b", "(t.a = 1 OR t.b = 2)",
                  "t.a BETWEEN SYMMETRIC 2 AND 1", "t.a && %s", "t.a @> %s", "t.a ? 'k'",
                  "t.a = 1 COLLATE \"C\"", "t.a::text = '1'", "t.a IS TRUE"):
        rs = predicates_for(f"SELECT * FROM t WHERE {where}", [[1, 2]])
        assert rs is not None
        assert conditions(rs, "t") == EVERY_ROW, where


def test_double_negation_of_null_tests() -> None:
    for where, op in (("NOT (t.a IS NULL)", "notnull"), ("NOT (t.a IS NOT NULL)", "isnull"),
                      ("t.a NOTNULL", "notnull"), ("t.a ISNULL", "isnull")):
        rs = predicates_for(f"SELECT * FROM t WHERE {where}", [])
        assert rs is not None
        assert conditions(rs, "t") == only(C("a", op)), where


def test_correlated_and_ambiguous_columns_are_not_attributed() -> None:
    rs = predicates_for(
        "SELECT * FROM a, b WHERE x = 1 AND a.y = 2 AND EXISTS "
        "(SELECT 1 FROM c WHERE c.z = a.y AND a.w = 5 AND c.v = 3)", [])
    assert rs is not None
    assert conditions(rs, "a") == only(C("y", "eq", (2,)))
    assert conditions(rs, "b") == EVERY_ROW
    assert conditions(rs, "c") == only(C("v", "eq", (3,)))


def test_ctes_and_self_joins_record_every_reference() -> None:
    rs = predicates_for(
        "WITH recent AS (SELECT * FROM t WHERE t.a > 1) "
        "SELECT * FROM recent JOIN t t2 ON recent.id = t2.parent WHERE t2.b = 2", [])
    assert rs is not None
    assert conditions(rs, "t") == {frozenset({C("a", "gt", (1,))}),
                                   frozenset({C("b", "eq", (2,))})}


def test_unhashable_parameters_drop_only_their_condition() -> None:
    rs = predicates_for("SELECT * FROM t WHERE t.a = %s AND t.b = %s", [[1, 2], {"k": 1}])
    assert rs is not None
    assert conditions(rs, "t") == EVERY_ROW
    assert not rs.everything


def test_parameters_beyond_those_given_or_given_by_name_drop_the_condition() -> None:
    short = predicates_for("SELECT * FROM t WHERE t.a = %s AND t.b = %s", [1])
    assert short is not None
    assert conditions(short, "t") == only(C("a", "eq", (1,)))
    named = predicates_for("SELECT * FROM t WHERE t.a = %s", {"a": 1})  # type: ignore[arg-type]
    assert named is not None
    assert conditions(named, "t") == EVERY_ROW
