"""A nested module: its functions are named `testapp/rooms:<name>`."""

from __future__ import annotations

from reactive import QueryCtx, query


@query
def hello(ctx: QueryCtx, name: str = "world") -> str:
    return f"hello {name}"
