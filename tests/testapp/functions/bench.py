"""Functions of the live-query benchmarks (bench/): `testapp/bench:<name>`."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import DatabaseError, connection
from django.db.models.functions import Upper
from psycopg import sql

from reactive import MutationCtx, QueryCtx, internal_query, mutation, query
from reactive.search import nearest, search
from tests.testapp.models import Message, Passage


@query
def channel_messages(ctx: QueryCtx, channel: str, limit: int = 10) -> Any:
    """The newest ``limit`` messages of one channel: one live query per channel."""
    return list(Message.objects.filter(channel=channel).order_by("-id")
                .values("id", "body")[:limit])


@query
def opaque_item_count(ctx: QueryCtx) -> int:
    """Composed SQL, which read-set analysis cannot follow: its read set is "everything"."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("testapp_item")))
        return int(cursor.fetchone()[0])


@query
def search_passages(ctx: QueryCtx, text: str, limit: int = 10) -> list[int]:
    """bench/search.py: a ranked search (precise read set)."""
    return [p.pk for p in search(Passage.objects.all(), "body", text, prefix=False)[:limit]]


@query
def search_passages_wide(ctx: QueryCtx, text: str, limit: int = 10) -> list[int]:
    """The same hits through an expression the read-set analysis does not follow (UPPER):
    the whole-table dependency every search had before, measured as the baseline."""
    rows = Passage.objects.annotate(v=SearchVector(Upper("body"), config="english")).filter(
        v=SearchQuery(text, config="english", search_type="websearch"))
    return list(rows.order_by("-pk").values_list("pk", flat=True)[:limit])


@query
def similar_passages(ctx: QueryCtx, vector: list[float], k: int = 10) -> list[int]:
    return [p.pk for p in nearest(Passage.objects.all(), "embedding", vector, k=k)]


@mutation
def post(ctx: MutationCtx, channel: str, body: str) -> str:
    return str(Message.objects.create(channel=channel, body=body).pk)


@internal_query
def reactor_stats(ctx: QueryCtx) -> dict[str, int]:
    """This process's Reactor counters (admin only). Read without the round thread's lock:
    a round may be in progress, so the numbers are approximate to within one round."""
    from reactive.live.reactor import _reactors

    totals: dict[str, int] = {"reactors": 0}
    for reactor in list(_reactors.values()):
        totals["reactors"] += 1
        for name, value in reactor.counts().items():
            totals[name] = totals.get(name, 0) + value
    return totals


@query
def notes_after_sql_error(ctx: QueryCtx, swallow: bool = False) -> Any:
    """A query whose SQL fails; with ``swallow`` it catches the error and reads on (in an
    aborted transaction): tests/live/test_reactor_rounds.py."""
    from tests.testapp.models import Note

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    except DatabaseError:
        if not swallow:
            raise
    return list(Note.objects.values_list("body", flat=True))
