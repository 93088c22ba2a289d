"""Reactions the tests fire (tests/reactions/): each watches rows with a test-only prefix and
leaves its traces as Note rows, so a test can count how often it ran."""

from __future__ import annotations

import os
import time

from django.db.models import F, Q, Value
from django.db.models.functions import Concat

from reactive import ActionCtx, Change, MutationCtx, SyncActionCtx, on_change
from tests.testapp.models import Account, Message, Note


@on_change(Account, where=Q(name__startswith="rx-"), ops=("insert", "update", "delete"))
def account_changed(ctx: MutationCtx, change: Change[Account]) -> None:
    """One note per change: op, name, old and new balance."""
    row = change.new or change.old
    assert row is not None
    old = change.old.balance if change.old else None
    new = change.new.balance if change.new else None
    Note.objects.create(body=f"rx-account:{change.op}:{row.name}:{old}:{new}")


@on_change(Message, where=Q(channel="rx-batch"), ops=("insert",), batch=50)
def messages_batched(ctx: MutationCtx, changes: list[Change[Message]]) -> None:
    """A note per message, and one per call with the batch size."""
    Note.objects.bulk_create(Note(body=f"rx-batch:{c.new.body}") for c in changes if c.new)
    Note.objects.create(body=f"rx-batch-call:{len(changes)}")


@on_change(Message, where=Q(channel="rx-fail"), ops=("insert",))
def fails_on_boom(ctx: MutationCtx, change: Change[Message]) -> None:
    assert change.new is not None
    if change.new.body == "boom":
        raise ValueError("boom is not allowed")
    Note.objects.create(body=f"rx-fail-ok:{change.new.body}")


@on_change(Message, where=Q(channel="rx-self"), ops=("insert", "update"))
def appends_to_itself(ctx: MutationCtx, change: Change[Message]) -> None:
    """Writes to the very table and row it watches: its own writes never fire it again."""
    assert change.new is not None
    Message.objects.filter(pk=change.new.pk).update(body=Concat(F("body"), Value("!")))
    Note.objects.create(body=f"rx-self:{change.new.pk}")


@on_change(Message, where=Q(channel="rx-slow"), ops=("insert",))
def slow_once(ctx: MutationCtx, change: Change[Message]) -> None:
    """Writes its note, then, the first time only (the body is a marker path that does not
    exist yet), creates the marker and hangs so a test can kill the worker mid-handler."""
    assert change.new is not None
    Note.objects.create(body=f"rx-slow:{change.new.pk}")
    marker = change.new.body
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)


@on_change(Message, where=Q(channel="bench-rx"), ops=("insert",))
def bench_reaction(ctx: MutationCtx, change: Change[Message]) -> None:
    """bench/reaction_lag.py: the note's created_at is when the handler ran."""
    assert change.new is not None
    Note.objects.create(body=f"bench-rx:{change.new.body}")


@on_change(Message, where=Q(channel="rx-act"), ops=("insert",), action=True)
def act_on_message(ctx: SyncActionCtx, change: Change[Message]) -> None:
    """An action handler: writes through a mutation. A body of "boom" fails; a body naming a
    marker path that does not exist yet makes the first run create it and hang after its
    write committed, so a test can kill the worker between the write and the cursor move."""
    assert change.new is not None
    if change.new.body == "boom":
        raise ValueError("boom is not allowed")
    ctx.run_mutation("testapp/jobs:write_note", body=f"rx-act:{change.new.body}")
    marker = change.new.body
    if marker.startswith(os.sep) and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)


@on_change(Message, where=Q(channel="rx-act-async"), ops=("insert",), action=True, batch=10)
async def act_async(ctx: ActionCtx, changes: list[Change[Message]]) -> None:
    """An async action handler taking batches."""
    bodies = ",".join(c.new.body for c in changes if c.new)
    await ctx.run_mutation("testapp/jobs:write_note", body=f"rx-act-async:{bodies}")
