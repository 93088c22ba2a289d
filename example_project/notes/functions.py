"""Team notes, written schema-free with ``ctx.db``: no model, no migration. Each note is a
document ``{"body", "tags", "pinned", "author"}`` of the table ``notes``; the page shows the
pinned ones and the latest ones live. Called as ``notes:add``, ``notes:pinned``, ...

The tutorial (docs/tutorial/index.md, part 13) moves the table into a Django model later; these
functions keep working unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from reactive import FunctionError, MutationCtx, QueryCtx, mutation, query

TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
MAX_TAGS = 5
MAX_BODY = 500


@mutation
def add(ctx: MutationCtx, body: str, tags: list[str]) -> str:
    """A new, unpinned note; returns its id."""
    author = _user(ctx).get_username()
    body = body.strip()
    if not body:
        raise FunctionError({"code": "EMPTY", "message": "Write the note first."})
    if len(body) > MAX_BODY:
        raise FunctionError({"code": "TOO_LONG",
                             "message": f"A note is at most {MAX_BODY} characters."})
    return ctx.db.insert("notes", {"body": body, "tags": _tags(tags), "pinned": False,
                                   "author": author})


@mutation
def pin(ctx: MutationCtx, id: str, pinned: bool) -> None:
    """Pin (``pinned=True``) or unpin a note."""
    _user(ctx)
    ctx.db.patch(_note(ctx, id)["_id"], {"pinned": pinned})


@mutation
def delete(ctx: MutationCtx, id: str) -> None:
    _user(ctx)
    ctx.db.delete(_note(ctx, id)["_id"])


@query
def pinned(ctx: QueryCtx) -> list[dict[str, Any]]:
    """The 20 most recently written pinned notes: re-run only by writes to pinned notes."""
    return ctx.db.table("notes").filter(pinned=True).order_by("-_creationTime")[:20]  # type: ignore[no-any-return]


@query
def recent(ctx: QueryCtx, limit: int = 10) -> list[dict[str, Any]]:
    """The latest notes, pinned or not."""
    return ctx.db.table("notes").order_by("-_creationTime")[: max(1, min(limit, 50))]  # type: ignore[no-any-return]


def _tags(tags: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(t.strip().lstrip("#").lower() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS or not all(TAG.fullmatch(t) for t in cleaned):
        raise FunctionError({"code": "BAD_TAGS", "message": (
            f"Up to {MAX_TAGS} tags: lowercase letters, digits and -, 24 characters each.")})
    return cleaned


def _note(ctx: QueryCtx, note_id: str) -> dict[str, Any]:
    """The note with this id, only from ``notes`` (an id of another table is not a note)."""
    note = ctx.db.table("notes").filter(_id=note_id).first()
    if note is None:
        raise FunctionError({"code": "NOT_FOUND", "message": "That note is gone."})
    return note


def _user(ctx: QueryCtx) -> Any:
    user = ctx.auth.user
    if not user.is_authenticated:
        raise FunctionError({"code": "LOGIN_REQUIRED", "message": "Log in first."})
    return user
