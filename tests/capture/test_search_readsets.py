"""Search read sets are sound and precise: full-text and nearest-neighbour queries re-run only
when a write can change their hits. Real Postgres evaluates the predicates; hypothesis draws
documents, searches and writes (several write paths) and every result change must be matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import psycopg
import pytest
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgvector.django import CosineDistance, L2Distance, MaxInnerProduct

from reactive.capture.matcher import Matcher
from reactive.capture.readsets import ReadSet, predicates_for, recording
from reactive.functions.snapshots import run_read_only
from reactive.live.inbox import AddRequest, QuerySetChanged
from reactive.live.reactor import Reactor
from tests.support.changelog import changes_after, dsn, last_change_id
from tests.support.rounds import Session, step
from tests.testapp.models import Document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

TABLE = Document._meta.db_table
WORDS = ["apple", "banana", "cherry", "dates", "elder", "figs", "grape", "honey"]
TAGS = ["a", "b"]
VECTORS = st.lists(st.sampled_from([0.0, 1.0, 2.0, -1.0]), min_size=3, max_size=3).filter(
    any)


def _sql(qs: Any) -> tuple[str, tuple[Any, ...]]:
    return qs.query.get_compiler("default").as_sql()  # type: ignore[no-any-return]


def _record(fn: Any) -> tuple[Any, ReadSet]:
    def run() -> tuple[Any, ReadSet]:
        with recording(connection) as recorder:
            result = fn()
        return result, recorder.read_set()

    return run_read_only(run, function="test")  # type: ignore[no-any-return]


def _match(matcher: Matcher, mark: int) -> set[Any]:
    changes = changes_after(mark, [TABLE])

    def run() -> set[Any]:
        with connection.cursor() as cursor:
            return matcher.match(changes, cursor)

    return run_read_only(run, function="test")  # type: ignore[no-any-return]


# -- analysis --------------------------------------------------------------------------------


def test_search_lookup_becomes_a_search_predicate_with_its_other_filters() -> None:
    # Given a __search lookup combined with an equality filter
    sql, params = _sql(Document.objects.filter(body__search="apple pie", tag="a"))
    # When its read set is computed
    read_set = predicates_for(sql, params)
    # Then the table is read through one search predicate keeping the equality in Python
    assert read_set is not None and not read_set.predicates and not read_set.everything
    (found,) = read_set.searches
    assert found.base.table == TABLE
    assert [(c.column, c.op, c.values) for c in found.base.conditions] == [("tag", "eq", ("a",))]
    assert "@@" in found.sql and "apple pie" in found.params


def test_negated_tsquery_and_unknown_functions_keep_the_wide_predicate() -> None:
    for qs in (Document.objects.filter(body__search=~SearchQuery("apple")),
               Document.objects.annotate(v=SearchVector("body")).filter(
                   v=SearchQuery("apple") & ~SearchQuery("pear"))):
        read_set = predicates_for(*_sql(qs))
        assert read_set is not None and not read_set.searches
        assert {p.table for p in read_set.predicates} == {TABLE}
    raw = "SELECT id FROM testapp_document WHERE md5(body) @@ to_tsquery(%s)"
    read_set = predicates_for(raw, ["x"])
    assert read_set is not None and not read_set.searches


def test_nearest_query_gets_a_bound_only_inside_a_snapshot() -> None:
    Document.objects.bulk_create([Document(body=w, embedding=[i + 1, 1, 0])
                                  for i, w in enumerate(WORDS)])
    qs = Document.objects.order_by(L2Distance("embedding", [1, 1, 0]))[:3]
    # Outside a REPEATABLE READ snapshot no bound can be trusted: the filters alone remain
    with recording(connection) as recorder:
        list(qs)
    (loose,) = recorder.read_set().searches
    assert loose.sql == "" and loose.nearest is None
    # Inside one, the third distance bounds the hits
    _, read_set = _record(lambda: list(qs.all()))
    (tight,) = read_set.searches
    assert tight.nearest is None and tight.params[-1] == pytest.approx(2.0)


def test_a_live_nearest_query_gets_its_bound_in_the_reactors_round() -> None:
    # Given a live top-2 query (cosine distance) over documents at 0, 0.29 and 1 from it
    Document.objects.bulk_create([Document(body=w, embedding=v) for w, v in zip(
        WORDS[:3], ([1, 0, 0], [1, 1, 0], [0, 1, 0]), strict=True)])
    reactor, session = Reactor(prune=False), Session()
    step(reactor, QuerySetChanged(session, 1, (AddRequest(
        1, "testapp/search:similar", {"vector": [1, 0, 0], "k": 2}, None),), ()))
    assert session.updates()[1] == ["apple", "banana"]
    runs = reactor.counts()["executions"]

    # When a document is written farther away than the page's last hit
    Document.objects.create(body="far", embedding=[0, 0, 1])
    step(reactor)

    # Then the round's own transaction bounded the page (the Reactor sends its own BEGIN,
    # with psycopg in autocommit): the far write re-ran nothing, a near one re-runs it
    assert reactor.counts()["executions"] == runs
    Document.objects.create(body="near", embedding=[1, 0.1, 0])
    step(reactor)
    assert reactor.counts()["executions"] == runs + 1
    assert session.updates()[1] == ["apple", "near"]


# -- precision --------------------------------------------------------------------------------


def test_a_write_without_the_searched_terms_does_not_rerun_the_search() -> None:
    # Given a live search for "banana" among tag "a"
    Document.objects.create(body="apple and banana", tag="a")
    matcher = Matcher()
    _, read_set = _record(lambda: list(Document.objects.filter(body__search="banana", tag="a")))
    matcher.set("search", read_set)
    # When documents without the term are written, by several paths
    mark = last_change_id()
    Document.objects.create(body="cherry pie", tag="a")
    Document.objects.filter(body="cherry pie").update(body="grape juice")
    Document.objects.bulk_create([Document(body="figs", tag="a")])
    Document.objects.create(body="banana bread", tag="b")  # the term, but the other tag
    # Then the search is not re-run
    assert _match(matcher, mark) == set()
    # And a write with the term (stemmed: "bananas") is
    mark = last_change_id()
    Document.objects.create(body="two bananas", tag="a")
    assert _match(matcher, mark) == {"search"}
    # And so is removing the term from a hit (the old row matched)
    mark = last_change_id()
    Document.objects.filter(body="apple and banana").update(body="apple only")
    assert _match(matcher, mark) == {"search"}


def test_a_far_vector_does_not_rerun_a_full_nearest_neighbour_page() -> None:
    # Given the 2 nearest of 4 documents to (1, 0, 0)
    Document.objects.bulk_create([Document(body=str(i), embedding=v) for i, v in enumerate(
        [[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 0, 1]])])
    matcher = Matcher()
    _, read_set = _record(lambda: list(
        Document.objects.order_by(CosineDistance("embedding", [1, 0, 0]))[:2]))
    matcher.set("nearest", read_set)
    # When a far document is added and a far one moves, still far
    mark = last_change_id()
    Document.objects.create(body="far", embedding=[0, 0, 1])
    Document.objects.filter(body="2").update(embedding=[0, 1, 1])
    assert _match(matcher, mark) == set()
    # Then a document exactly as close as the second hit (a tie) re-runs it
    mark = last_change_id()
    Document.objects.create(body="tie", embedding=[1, 0.1, 0])
    assert _match(matcher, mark) == {"nearest"}


# -- the property ---------------------------------------------------------------------------


class Search(NamedTuple):
    kind: str
    text: str
    tag: str | None
    vector: tuple[float, ...]
    window: tuple[int, int]


SEARCHES = st.builds(
    Search,
    kind=st.sampled_from(["lookup", "vector_english", "websearch", "prefix", "rank",
                          "cosine", "l2", "inner", "cosine_filtered"]),
    text=st.lists(st.sampled_from(WORDS), min_size=1, max_size=2).map(" ".join),
    tag=st.none() | st.sampled_from(TAGS),
    vector=VECTORS.map(tuple),
    window=st.sampled_from([(0, 1), (0, 2), (0, 3), (1, 3), (2, 5)]),
)


def evaluate(search: Search) -> Any:
    qs = Document.objects.all()
    if search.tag is not None:
        qs = qs.filter(tag=search.tag)
    vector = SearchVector("body", config="english")
    if search.kind == "lookup":
        qs = qs.filter(body__search=search.text)
    elif search.kind == "vector_english":
        qs = qs.annotate(v=vector).filter(v=SearchQuery(search.text, config="english"))
    elif search.kind == "websearch":
        qs = qs.annotate(v=vector).filter(v=SearchQuery(search.text, search_type="websearch",
                                                        config="english"))
    elif search.kind == "prefix":
        raw = " & ".join([*search.text.split()[:-1], search.text.split()[-1][:3] + ":*"])
        qs = qs.annotate(v=vector).filter(v=SearchQuery(raw, search_type="raw",
                                                        config="english"))
    elif search.kind == "rank":
        query = SearchQuery(search.text, config="english")
        qs = qs.annotate(r=SearchRank(vector, query)).filter(r__gt=0).order_by("-r", "pk")
        return list(qs.values_list("pk", "body", "tag", "r")[slice(*search.window)])
    else:
        distance = {"cosine": CosineDistance, "l2": L2Distance, "inner": MaxInnerProduct,
                    "cosine_filtered": CosineDistance}[search.kind]
        if search.kind == "cosine_filtered":
            qs = qs.filter(rank__gte=1)
        qs = qs.annotate(d=distance("embedding", list(search.vector))).order_by("d", "pk")
        return list(qs.values_list("pk", "body", "tag", "d")[slice(*search.window)])
    return sorted(qs.values_list("pk", "body", "tag"))


DOCS = st.fixed_dictionaries({
    "body": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    "tag": st.sampled_from(TAGS),
    "rank": st.integers(0, 2),
    "embedding": VECTORS,
})
INDEX = st.integers(0, 20)
WRITES = st.one_of(
    st.tuples(st.just("create"), DOCS),
    st.tuples(st.just("bulk_create"), st.lists(DOCS, min_size=1, max_size=3)),
    st.tuples(st.just("save"), INDEX, DOCS),
    st.tuples(st.just("update_word"), st.sampled_from(WORDS), st.sampled_from(WORDS)),
    st.tuples(st.just("delete"), INDEX),
    st.tuples(st.just("raw_sql"), INDEX, DOCS),
    st.tuples(st.just("other_program"), DOCS),
    st.tuples(st.just("truncate")),
)


def _pick(index: int) -> Document | None:
    docs = list(Document.objects.order_by("pk"))
    return docs[index % len(docs)] if docs else None


def apply(other: psycopg.Connection[Any], write: tuple[Any, ...]) -> None:
    kind, *args = write
    if kind == "create":
        Document.objects.create(**args[0])
    elif kind == "bulk_create":
        Document.objects.bulk_create([Document(**d) for d in args[0]])
    elif kind in ("save", "delete", "raw_sql"):
        doc = _pick(args[0])
        if doc is None:
            return
        if kind == "delete":
            doc.delete()
        elif kind == "save":
            for name, value in args[1].items():
                setattr(doc, name, value)
            doc.save()
        else:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE testapp_document SET body = %s, embedding = %s::vector "
                               "WHERE id = %s", [args[1]["body"], str(args[1]["embedding"]),
                                                 doc.pk])
    elif kind == "update_word":
        for doc in Document.objects.filter(body__contains=args[0]):
            Document.objects.filter(pk=doc.pk).update(body=doc.body.replace(args[0], args[1]))
    elif kind == "other_program":
        doc = args[0]
        other.execute("INSERT INTO testapp_document (title, body, tag, rank, embedding) "
                      "VALUES ('', %s, %s, %s, %s::vector)",
                      [doc["body"], doc["tag"], doc["rank"], str(doc["embedding"])])
    else:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE testapp_document")


@pytest.fixture
def other() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        yield conn


def test_every_search_result_change_is_matched(other: psycopg.Connection[Any]) -> None:
    tally: Counter[str] = Counter()

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(initial=st.lists(DOCS, max_size=8), searches=st.lists(SEARCHES, min_size=1,
                                                                   max_size=4),
           writes=st.lists(WRITES, min_size=1, max_size=4))
    def scenario(initial: list[dict[str, Any]], searches: list[Search],
                 writes: list[tuple[Any, ...]]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM testapp_document")
        Document.objects.bulk_create([Document(**d) for d in initial])
        state = {i: _record(lambda s=s: evaluate(s)) for i, s in enumerate(searches)}
        for write in writes:
            matcher = Matcher()
            for key, (_, read_set) in state.items():
                matcher.set(key, read_set)
            mark = last_change_id()
            apply(other, write)
            hit = _match(matcher, mark)
            after = {i: _record(lambda s=s: evaluate(s)) for i, s in enumerate(searches)}
            for key, (before, read_set) in state.items():
                if after[key][0] != before:
                    tally["needed"] += 1
                    assert key in hit, (f"missed update search={searches[key]} write={write}"
                                        f" read_set={read_set} before={before} "
                                        f"after={after[key][0]}")
                else:
                    tally["extra" if key in hit else "spared"] += 1
            state = after

    with transaction.atomic():
        pass
    scenario()
    print(f"search read-set tally: {dict(tally)}")
    assert tally["needed"] >= 50
    assert tally["spared"] >= 0.3 * (tally["spared"] + tally["extra"])


# -- the conveniences, with bad input -------------------------------------------------------


def test_prefix_query_quotes_user_input_and_prefixes_the_last_word() -> None:
    from reactive.search import prefix_query, search

    Document.objects.create(body="Running late, apologies")
    Document.objects.create(body="it's a rune")
    # Operators and quotes in the text are plain text, the last word a prefix
    for text, expected in (("apolo", ["Running late, apologies"]),
                           ("late & !! ':* apol", ["Running late, apologies"]),
                           ("rune's", ["it's a rune"]), ("zzz", [])):
        hits = search(Document.objects.all(), "body", text)
        assert [d.body for d in hits] == expected, text
    assert prefix_query("  !!&| ") is None
    assert list(search(Document.objects.all(), "body", "   ")) == []
    with pytest.raises(ValueError, match="at least one field"):
        search(Document.objects.all(), (), "x")


def test_nearest_refuses_bad_k_and_unknown_distances() -> None:
    from reactive.search import nearest

    with pytest.raises(ValueError, match="k >= 1"):
        nearest(Document.objects.all(), "embedding", [1, 0, 0], k=0)
    with pytest.raises(ValueError, match="Unknown distance"):
        nearest(Document.objects.all(), "embedding", [1, 0, 0],
                distance="manhattan")  # type: ignore[arg-type]


def test_the_reactor_reruns_a_live_search_only_for_writes_with_its_terms() -> None:
    from reactive.testing import Caller

    # Given a live search through a real Reactor round (the testing kit's subscription)
    Document.objects.create(body="ripe banana", tag="a")
    with Caller().subscribe("testapp/search:documents", text="banana") as hits:
        reactor = hits._reactor
        runs = reactor.stats["executions"]
        # When documents without the term are written, a round runs and re-runs nothing
        Document.objects.create(body="cherry pie", tag="a")
        Document.objects.bulk_create([Document(body="grape", tag="b")])
        assert not hits._round([])
        assert reactor.stats["executions"] == runs
        # Then a document with the term re-runs it once, and the new hit is pushed
        Document.objects.create(body="banana bread", tag="b")
        assert sorted(hits.next()) == ["banana bread", "ripe banana"]
        assert reactor.stats["executions"] == runs + 1
