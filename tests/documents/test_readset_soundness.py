"""Document read sets are sound and precise: whenever a write changes a ``ctx.db`` query's
result, the write's real change rows match the read set the query recorded. Hypothesis draws
documents (JSON nulls, missing keys, 1 vs 1.0 vs true, nested objects, arrays), queries
(document-field lookups, exclusions, ordering, slicing) and writes (every store write, raw SQL,
another program); Postgres runs them and the real Matcher decides.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import psycopg
import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive.capture.matcher import Matcher
from reactive.capture.readsets import ReadSet, recording
from reactive.documents import store
from reactive.documents.query import DocumentQuery
from reactive.documents.validation import creation_time, new_id
from reactive.models import Document
from tests.support.changelog import changes_after, dsn, last_change_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(1800)]
EXAMPLES = int(os.environ.get("REACTIVE_SOUNDNESS_EXAMPLES", "300"))
TABLE = Document._meta.db_table

VALUES = st.sampled_from([None, True, False, 0, 1, 1.0, 1.5, 2, "a", "b", [], ["x"],
                          ["x", "y"], ["a", 1.0], [True, {"color": "red"}], [["x"]],
                          {"color": "red"}, {"color": "blue"}, {"color": ["x"]}, {}])
FIELDS = ("pinned", "n", "tags", "meta", "body")
DOCS = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4)
PATHS = st.sampled_from([*FIELDS, "meta__color"])
TABLES = st.sampled_from(["notes", "notes", "other"])
LOOKUPS = st.one_of(
    st.tuples(PATHS, st.just(""), VALUES),
    st.tuples(PATHS, st.just("__in"), st.lists(VALUES, min_size=1, max_size=3)),
    st.tuples(PATHS, st.just("__contains"), st.sampled_from(
        [["x"], ["y"], [], ["x", "y"], [["x"]], [{}], {"color": "red"}, {}, "a", 1, True])),
    st.tuples(PATHS, st.just("__gt"), st.sampled_from([0, 1, 1.5, "a"])),
    st.tuples(PATHS, st.just("__isnull"), st.booleans()),
)


class Query(NamedTuple):
    table: str
    lookups: tuple[tuple[str, str, Any], ...]
    exclude: bool
    order: tuple[str, ...]
    window: tuple[int, int] | None


QUERIES = st.builds(
    Query, table=TABLES, lookups=st.lists(LOOKUPS, max_size=2).map(tuple),
    exclude=st.booleans(),
    order=st.lists(st.sampled_from(["-_creationTime", "n", "-body", "_id"]), max_size=1,
                   unique=True).map(tuple),
    window=st.none() | st.tuples(st.integers(0, 2), st.integers(1, 3)).map(
        lambda w: (w[0], w[0] + w[1])))

INDEX = st.integers(0, 20)
WRITES = st.one_of(
    st.tuples(st.just("insert"), TABLES, DOCS),
    st.tuples(st.just("patch"), INDEX, DOCS),
    st.tuples(st.just("replace"), INDEX, DOCS),
    st.tuples(st.just("delete"), INDEX),
    st.tuples(st.just("raw_set"), INDEX, st.sampled_from(FIELDS), VALUES),
    st.tuples(st.just("other_program"), TABLES, DOCS),
)


def evaluate(query: Query) -> Any:
    docs = DocumentQuery(query.table)
    lookups = {f"{path}{suffix}": value for path, suffix, value in query.lookups}
    docs = docs.exclude(**lookups) if query.exclude and lookups else docs.filter(**lookups)
    if query.order:
        docs = docs.order_by(*query.order)
    rows = docs[slice(*query.window)] if query.window else docs.collect()
    return [json.dumps(row, sort_keys=True) for row in rows]


def _pick(index: int) -> str | None:
    ids = list(Document.objects.order_by("id").values_list("id", flat=True))
    return ids[index % len(ids)] if ids else None


def apply(other: psycopg.Connection[Any], write: tuple[Any, ...]) -> None:
    kind, *args = write
    with transaction.atomic():
        if kind == "insert":
            store.insert(args[0], args[1])
        elif kind == "other_program":
            other.execute("INSERT INTO reactive_document (id, \"table\", creation_time, data) "
                          "VALUES (%s, %s, %s, %s)",
                          [new_id(), args[0], creation_time(), json.dumps(args[1])])
        elif (target := _pick(args[0])) is None:
            return
        elif kind == "patch":
            store.patch(target, args[1])
        elif kind == "replace":
            store.replace(target, args[1])
        elif kind == "delete":
            store.delete(target)
        else:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE reactive_document SET data = jsonb_set(data, %s, %s) "
                               "WHERE id = %s", [[args[1]], json.dumps(args[2]), target])


def _record(query: Query) -> tuple[Any, ReadSet]:
    with transaction.atomic(), recording(connection) as recorder:
        result = evaluate(query)
    return result, recorder.read_set()


def check(other: psycopg.Connection[Any], tally: Counter[str], initial: list[tuple[str, Any]],
          queries: list[Query], writes: list[tuple[Any, ...]]) -> None:
    # Given a known starting state and every query's read set
    Document.objects.all().delete()
    for table, doc in initial:
        store.insert(table, doc)
    state = {i: _record(q) for i, q in enumerate(queries)}
    matcher = Matcher()
    for write in writes:
        for key, (_, read_set) in state.items():
            matcher.set(key, read_set)
        # When one write happens
        mark = last_change_id()
        apply(other, write)
        hit = matcher.match(changes_after(mark, [TABLE]))
        after = {i: _record(q) for i, q in enumerate(queries)}
        # Then every query whose result changed is matched
        for key, (before, read_set) in state.items():
            if after[key][0] != before:
                tally["needed"] += 1
                assert key in hit, (f"missed update query={queries[key]} read set={read_set} "
                                    f"write={write} before={before} after={after[key][0]}")
            else:
                tally["extra" if key in hit else "spared"] += 1
        state = after


@pytest.fixture
def other() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        yield conn


def test_every_document_result_change_is_matched(other: psycopg.Connection[Any]) -> None:
    tally: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(initial=st.lists(st.tuples(TABLES, DOCS), max_size=6),
           queries=st.lists(QUERIES, min_size=1, max_size=4),
           writes=st.lists(WRITES, min_size=1, max_size=4))
    def scenario(initial: list[tuple[str, Any]], queries: list[Query],
                 writes: list[tuple[Any, ...]]) -> None:
        check(other, tally, initial, queries, writes)

    scenario()
    # And the read sets are far from "every document": many unaffected queries were spared
    print(f"document read-set tally: {dict(tally)}")
    assert tally["needed"] >= 50
    assert tally["spared"] >= 0.3 * (tally["spared"] + tally["extra"])


def test_a_write_outside_a_document_field_filter_does_not_match(
        other: psycopg.Connection[Any]) -> None:
    # Given a subscription to pinned notes
    tally: Counter[str] = Counter()
    query = Query("notes", (("pinned", "", True),), False, ("-_creationTime",), (0, 20))
    # When unpinned notes and pinned documents of another table are written, then a pinned note
    check(other, tally, [("notes", {"pinned": True, "body": "a"})], [query],
          [("insert", "notes", {"pinned": False, "body": "b"}),
           ("insert", "other", {"pinned": True}),
           ("insert", "notes", {"pinned": 1}),
           ("insert", "notes", {"body": "no pinned key"}),
           ("insert", "notes", {"pinned": True, "body": "c"})])
    # Then only the last write was matched
    assert tally == Counter(spared=4, needed=1)


def test_numbers_match_as_exact_decimals(other: psycopg.Connection[Any]) -> None:
    # Given subscriptions to n == 1.5 and to tags containing 1 (1.0 is the same jsonb number)
    tally: Counter[str] = Counter()
    queries = [Query("notes", (("n", "", 1.5),), False, (), None),
               Query("notes", (("tags", "__contains", 1),), False, (), None)]
    # When documents with those numbers, and with others, are written
    check(other, tally, [], queries,
          [("insert", "notes", {"n": 1.5}), ("insert", "notes", {"n": 2, "tags": [2.0]}),
           ("insert", "notes", {"tags": ["a", 1.0]})])
    # Then each needed re-run was matched, the unrelated writes spared both
    assert tally == Counter(needed=2, spared=4)
