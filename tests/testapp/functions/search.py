"""Search functions the live tests call: `testapp/search:<name>`."""

from __future__ import annotations

from typing import Any

from reactive import FunctionError, MutationCtx, QueryCtx, mutation, query
from reactive.functions.pagination import PaginationOptions
from reactive.search import nearest, search
from tests.testapp.models import Document


@query
def documents(ctx: QueryCtx, text: str, tag: str | None = None, limit: int = 10) -> list[str]:
    """Bodies matching ``text`` (last word a prefix), most relevant first."""
    rows = Document.objects.all() if tag is None else Document.objects.filter(tag=tag)
    return [d.body for d in search(rows, "body", text)[:limit]]


@query
def pages(ctx: QueryCtx, pagination_opts: PaginationOptions, text: str, tag: str) -> Any:
    """A reactive page of the documents of ``tag`` matching ``text``, by body."""
    rows = search(Document.objects.filter(tag=tag), "body", text).order_by("body")
    return ctx.paginate(rows, pagination_opts)


@query
def similar(ctx: QueryCtx, vector: list[float], k: int = 2, tag: str | None = None
            ) -> list[str]:
    rows = Document.objects.all() if tag is None else Document.objects.filter(tag=tag)
    return [d.body for d in nearest(rows, "embedding", vector, k=k)]


@mutation
def add(ctx: MutationCtx, body: str, tag: str = "a", embedding: list[float] | None = None
        ) -> str:
    if len(embedding or [0, 0, 0]) != 3:
        raise FunctionError({"code": "DIMENSIONS", "expected": 3})
    return str(Document.objects.create(body=body, tag=tag, embedding=embedding).pk)


@mutation
def edit(ctx: MutationCtx, body: str, new_body: str) -> int:
    return Document.objects.filter(body=body).update(body=new_body)
