"""File-storage functions of the test app: `testapp/files:<name>`."""

from __future__ import annotations

from typing import Any

from reactive import (
    ActionCtx,
    Id,
    MutationCtx,
    QueryCtx,
    StoredFile,
    SyncActionCtx,
    action,
    mutation,
    query,
)
from tests.testapp.models import Photo


@mutation
def generate_upload_url(ctx: MutationCtx) -> str:
    return ctx.storage.generate_upload_url()


@mutation
def attach(ctx: MutationCtx, storage_id: Id[StoredFile], caption: str) -> str:
    return str(Photo.objects.create(file_id=storage_id, caption=caption).pk)


@query
def photos(ctx: QueryCtx) -> list[dict[str, Any]]:
    return [
        {"caption": p.caption, "url": ctx.storage.get_url(p.file_id) if p.file_id else None}
        for p in Photo.objects.order_by("id")
    ]


@query
def metadata(ctx: QueryCtx, storage_id: str) -> dict[str, Any] | None:
    return ctx.storage.get_metadata(storage_id)


@query
def url(ctx: QueryCtx, storage_id: str) -> str | None:
    return ctx.storage.get_url(storage_id)


@mutation
def delete(ctx: MutationCtx, storage_id: str) -> None:
    ctx.storage.delete(storage_id)


@action
async def store_text(ctx: ActionCtx, text: str) -> str:
    return await ctx.storage.store(text.encode(), content_type="text/plain")


@action
def read_text(ctx: SyncActionCtx, storage_id: str) -> str | None:
    handle = ctx.storage.get(storage_id)
    if handle is None:
        return None
    with handle:
        return bytes(handle.read()).decode()


@action
async def delete_from_action(ctx: ActionCtx, storage_id: str) -> None:
    await ctx.storage.delete(storage_id)
