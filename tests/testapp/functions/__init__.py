"""Functions of the test app: `testapp:<name>`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from typing import Any, Literal

from typing_extensions import TypedDict

from reactive import (
    ActionCtx,
    FunctionError,
    Id,
    MutationCtx,
    QueryCtx,
    SyncActionCtx,
    action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from tests.testapp import hooks
from tests.testapp.models import Account, Note


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Filter(TypedDict, total=False):
    contains: str
    limit: int


@query
def list_notes(ctx: QueryCtx, limit: int = 50) -> Any:
    return Note.objects.order_by("id")[:limit]


@query
def search_notes(ctx: QueryCtx, filter: Filter, order: Literal["asc", "desc"] = "asc") -> Any:
    notes = Note.objects.order_by("id" if order == "asc" else "-id")
    if "contains" in filter:
        notes = notes.filter(body__contains=filter["contains"])
    return notes[: filter.get("limit", 100)]


@query
def get_note(ctx: QueryCtx, id: Id[Note]) -> Any:
    return Note.objects.filter(pk=id).first()


@mutation
def add_note(ctx: MutationCtx, body: str) -> str:
    if not body.strip():
        raise FunctionError({"code": "EMPTY", "field": "body"})
    user = ctx.auth.user
    note = Note.objects.create(body=body, author=user if user.is_authenticated else None)
    return str(note.pk)


@mutation
def add_two_notes(ctx: MutationCtx, body: str) -> list[str]:
    """Calls a mutation from a mutation: both writes share one transaction."""
    first = ctx.run_mutation(add_note, body=body)
    second = ctx.run_mutation("testapp:add_note", body=body + "!")
    return [first, second]


@mutation
def add_then_fail(ctx: MutationCtx, body: str) -> None:
    Note.objects.create(body=body)
    raise FunctionError("rolled back")


@query
def write_in_query(ctx: QueryCtx) -> None:
    Note.objects.create(body="never")


@query
def echo(ctx: QueryCtx, value: Any = None) -> Any:
    return value


@query
def typed(
    ctx: QueryCtx,
    point: Point,
    tags: list[str],
    mode: Literal["a", "b"] = "a",
    n: int | None = None,
) -> dict[str, Any]:
    return {"point": point, "tags": tags, "mode": mode, "n": n}


@query
def special_floats(ctx: QueryCtx) -> list[float]:
    return [math.nan, math.inf, -math.inf, -0.0, 1.5]


@query
def big_int(ctx: QueryCtx) -> int:
    return 2**60


@query
def whoami(ctx: QueryCtx) -> Any:
    identity = ctx.auth.get_user_identity()
    return {
        "user": ctx.auth.user.get_username() if ctx.auth.user.is_authenticated else None,
        "admin": ctx.auth.is_admin,
        "tokenIdentifier": identity.token_identifier if identity else None,
    }


@query(returns=int)
def bad_return(ctx: QueryCtx) -> Any:
    return "not an int"


@query
def crash(ctx: QueryCtx) -> None:
    raise ValueError("boom")


@query
def bad_key(ctx: QueryCtx) -> dict[str, int]:
    return {"café": 1}


@internal_query
def secret(ctx: QueryCtx) -> str:
    return "internal"


@internal_mutation
def internal_add(ctx: MutationCtx, body: str) -> str:
    return str(Note.objects.create(body=body).pk)


@mutation
def transfer(ctx: MutationCtx, source: str, target: str, amount: int) -> None:
    """Move money; refuses overdrafts. Conflicts are what SERIALIZABLE is for."""
    a = Account.objects.get(name=source)
    b = Account.objects.get(name=target)
    if a.balance < amount:
        raise FunctionError({"code": "INSUFFICIENT_FUNDS"})
    Account.objects.filter(pk=a.pk).update(balance=a.balance - amount)
    Account.objects.filter(pk=b.pk).update(balance=b.balance + amount)


@query
def total_balance(ctx: QueryCtx) -> int:
    return sum(Account.objects.values_list("balance", flat=True))


@query
def balance(ctx: QueryCtx, name: str) -> int | None:
    """One account's balance (None when there is no such account)."""
    return Account.objects.filter(name=name).values_list("balance", flat=True).first()


@action
async def summarize(ctx: ActionCtx, prefix: str = "") -> dict[str, Any]:
    notes = await ctx.run_query(list_notes)
    await asyncio.sleep(0)
    new_id = await ctx.run_mutation(add_note, body=f"{prefix}{len(notes)} notes")
    secret_value = await ctx.run_query("testapp:secret")
    return {"count": len(notes), "id": new_id, "secret": secret_value}


@action
def sync_summarize(ctx: SyncActionCtx) -> int:
    notes = ctx.run_query(list_notes)
    ctx.run_mutation(add_note, body="from a sync action")
    return len(notes)


@action
def write_in_action(ctx: SyncActionCtx) -> None:
    Note.objects.create(body="direct write")


@action
def action_calls_action(ctx: SyncActionCtx) -> Any:
    return ctx.run_action(sync_summarize)


@action
def fail_action(ctx: SyncActionCtx, code: str) -> None:
    raise FunctionError({"code": code})


@mutation
def go_off_call(ctx: MutationCtx, name: str) -> int:
    """Write-skew shape: read how many are on call (balance == 1), then leave if not the last."""
    on_call = Account.objects.filter(balance=1).count()
    hooks.pause()
    if on_call < 2:
        raise FunctionError({"code": "LAST_ON_CALL"})
    Account.objects.filter(name=name).update(balance=0)
    return on_call - 1


@mutation
def bump(ctx: MutationCtx, name: str) -> int:
    """Read then write one row; a concurrent commit in between forces a serialization failure."""
    account = Account.objects.get(name=name)
    hooks.pause()
    Account.objects.filter(pk=account.pk).update(balance=account.balance + 1)
    return account.balance + 1


@mutation
def swallow_inner_failure(ctx: MutationCtx, body: str) -> int:
    """The inner mutation fails and is caught: its write must roll back, ours must not."""
    Note.objects.create(body=f"outer {body}")
    with contextlib.suppress(FunctionError):
        ctx.run_mutation(add_then_fail, body=f"inner {body}")
    return Note.objects.count()


@action
async def write_in_async_action(ctx: ActionCtx) -> None:
    await Note.objects.acreate(body="direct async write")


@action
def write_with_cte(ctx: SyncActionCtx) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("WITH n AS (INSERT INTO testapp_note (body, created_at) "
                       "VALUES ('cte', now()) RETURNING id) SELECT id FROM n")
