"""Functions of the live-query benchmarks (bench/): `testapp/bench:<name>`."""

from __future__ import annotations

from typing import Any

from django.db import connection
from psycopg import sql

from reactive import MutationCtx, QueryCtx, internal_query, mutation, query
from tests.testapp.models import Message


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
