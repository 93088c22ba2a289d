"""Schema-free document functions of the test app (ctx.db): `testapp/documents:<name>`."""

from __future__ import annotations

from typing import Any

from reactive import MutationCtx, QueryCtx, migration, mutation, query
from reactive.documents.move import move_document
from reactive.functions.pagination import PaginationOptions
from reactive.models import Document
from tests.testapp.models import MovedNote


@mutation
def add_note(ctx: MutationCtx, body: str, tags: list[str], pinned: bool = False) -> str:
    return ctx.db.insert("notes", {"body": body, "tags": tags, "pinned": pinned})


@mutation
def insert(ctx: MutationCtx, table: str, doc: Any) -> str:
    return ctx.db.insert(table, doc)


@mutation
def patch(ctx: MutationCtx, id: str, fields: Any) -> None:
    ctx.db.patch(id, fields)


@mutation
def replace(ctx: MutationCtx, id: str, doc: Any) -> None:
    ctx.db.replace(id, doc)


@mutation
def delete(ctx: MutationCtx, id: str) -> None:
    ctx.db.delete(id)


@mutation
def insert_two_then_fail(ctx: MutationCtx, table: str) -> None:
    ctx.db.insert(table, {"n": 1})
    ctx.db.insert(table, {"n": float("nan")})


@query
def get(ctx: QueryCtx, id: str) -> Any:
    return ctx.db.get(id)


@query
def pinned(ctx: QueryCtx) -> list[dict[str, Any]]:
    return ctx.db.table("notes").filter(pinned=True).order_by("-_creationTime")[:20]  # type: ignore[no-any-return]


@query
def tagged(ctx: QueryCtx, tag: str) -> list[dict[str, Any]]:
    return ctx.db.table("notes").filter(tags__contains=[tag]).collect()


@query
def page(ctx: QueryCtx, pagination_opts: PaginationOptions) -> Any:
    return ctx.db.table("notes").order_by("-_creationTime").paginate(pagination_opts)


@query
def all_of(ctx: QueryCtx, table: str) -> list[dict[str, Any]]:
    return ctx.db.table(table).collect()


@query
def write_in_query(ctx: QueryCtx) -> str:
    return ctx.db.insert("notes", {"body": "no"})


@migration(Document.objects.filter(table="moved_note"), batch_size=2)
def move_moved_notes(ctx: MutationCtx, doc: Document) -> None:
    """The documents of ``moved_note`` into testapp.MovedNote, by the data-migration runner."""
    move_document(doc, MovedNote)
