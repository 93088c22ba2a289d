"""@on_change against a real Celery worker (with its dispatcher) on real Postgres and Redis:
every writer fires it, exactly once per change, in commit order; failures park; bad input
fails at declaration."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Q
from django.test import Client

from reactive import on_change
from reactive.exceptions import DefinitionError
from reactive.functions.runtime import runtime
from reactive.models import Reaction, ReactionState
from reactive.reactions import control, runner
from reactive.reactions.definitions import registry
from reactive.reactions.log import where_sql
from tests.reactions.reading import notes, reaction
from tests.support.fixtures_celery import DISPATCHER_ON, CeleryProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Account, Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_every_writer_fires_the_reaction_once_in_commit_order(
    reacting_worker: CeleryProcess,
) -> None:
    # Given an account written by the ORM, QuerySet.update(), raw SQL and a delete
    account = Account.objects.create(name="rx-orm", balance=1)
    Account.objects.filter(pk=account.pk).update(balance=2)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_account SET balance = 3 WHERE id = %s", [account.pk])
    Account.objects.bulk_create([Account(name="rx-bulk", balance=7),
                                 Account(name="other", balance=8)])
    Account.objects.filter(pk=account.pk).delete()
    # Then each matching change reached the handler once, in commit order, with typed images
    expected = ["rx-account:insert:rx-orm:None:1", "rx-account:update:rx-orm:1:2",
                "rx-account:update:rx-orm:2:3", "rx-account:insert:rx-bulk:None:7",
                "rx-account:delete:rx-orm:3:None"]
    wait_for(lambda: len(notes("rx-account:")) >= 5, what="five reactions")
    assert notes("rx-account:") == expected
    assert reaction("testapp:account_changed").handled == 5


def test_admin_writes_fire_the_reaction(reacting_worker: CeleryProcess) -> None:
    # Given a superuser using the admin's add form
    User.objects.create_superuser("boss", "boss@example.invalid", "pw")
    client = Client()
    client.login(username="boss", password="pw")
    response = client.post("/admin/testapp/account/add/", {"name": "rx-admin", "balance": "42"})
    assert response.status_code == 302, response.content[:500]
    # Then the reaction saw the insert
    wait_for(lambda: notes("rx-account:insert:rx-admin"), what="admin write to fire")
    assert notes("rx-account:") == ["rx-account:insert:rx-admin:None:42"]


def test_mutation_writes_fire_the_reaction(reacting_worker: CeleryProcess) -> None:
    runtime.run("testapp/jobs:write_note", {"body": "not watched"})
    Message.objects.create(channel="rx-fail", body="fine")
    wait_for(lambda: notes("rx-fail-ok:fine"), what="reaction to an ORM insert")


def test_batched_handler_gets_at_most_batch_changes_per_call(
    reacting_worker: CeleryProcess,
) -> None:
    # When 120 matching messages (and some that do not match) are inserted at once
    Message.objects.bulk_create(
        [Message(channel="rx-batch", body=f"m{i}") for i in range(120)]
        + [Message(channel="elsewhere", body="x") for _ in range(30)]
    )
    # Then every message is handled exactly once, in calls of at most 50
    wait_for(lambda: len(notes("rx-batch:")) >= 120, what="120 batched changes")
    assert sorted(notes("rx-batch:")) == sorted(f"rx-batch:m{i}" for i in range(120))
    calls = [int(body.rsplit(":", 1)[1]) for body in notes("rx-batch-call:")]
    assert sum(calls) == 120 and max(calls) <= 50


def test_a_handler_writing_its_own_table_does_not_fire_itself(
    reacting_worker: CeleryProcess,
) -> None:
    # Given a handler that updates the very row it watches
    message = Message.objects.create(channel="rx-self", body="hi")
    wait_for(lambda: notes(f"rx-self:{message.pk}"), what="self-writing reaction")
    barrier = Message.objects.create(channel="rx-fail", body="barrier")
    wait_for(lambda: notes("rx-fail-ok:barrier"), what="a later change to be handled")
    wait_for(lambda: reaction("testapp:appends_to_itself").window_end == "",
             what="the self-writing reaction to reach the present")
    # Then its own update did not fire it again: one note, one "!"
    assert notes("rx-self:") == [f"rx-self:{message.pk}"]
    assert Message.objects.get(pk=message.pk).body == "hi!"
    assert barrier.pk


def test_a_failing_handler_is_retried_then_parked_then_skipped(
    reacting_worker: CeleryProcess,
) -> None:
    # Given a change the handler always fails on
    Message.objects.create(channel="rx-fail", body="boom")
    parked = wait_for(lambda: Reaction.objects.filter(
        name="testapp:fails_on_boom", state=ReactionState.FAILED).first(), what="parking")
    # Then it was tried REACTION_MAX_ATTEMPTS times, and the change and traceback are kept
    assert parked.attempts == 3
    assert "ValueError: boom is not allowed" in parked.error
    assert parked.failed_change is not None and parked.failed_change["op"] == "I"
    # And later changes wait behind it (commit order)
    Message.objects.create(channel="rx-fail", body="after")
    out = StringIO()
    call_command("reactive_triggers", "reactions", stdout=out)
    assert "testapp:fails_on_boom  state=failed" in out.getvalue()
    assert "ValueError: boom is not allowed" in out.getvalue()
    assert notes("rx-fail-ok:after") == []
    # When an operator retries, it fails again; when they skip, the next change is handled
    call_command("reactive_triggers", "retry", "testapp:fails_on_boom", stdout=StringIO())
    wait_for(lambda: reaction("testapp:fails_on_boom").state == ReactionState.FAILED
             and reaction("testapp:fails_on_boom").attempts == 3, what="parked again")
    out = StringIO()
    call_command("reactive_triggers", "skip", "testapp:fails_on_boom", stdout=out)
    assert "skipped 1 change(s)" in out.getvalue()
    wait_for(lambda: notes("rx-fail-ok:after"), what="the change after the skipped one")
    assert notes("rx-fail-ok:boom") == []


def test_kill_9_mid_handler_runs_the_change_again_exactly_once(
    reacting_worker: CeleryProcess,
) -> None:
    # Given a handler that hangs, the first time, after writing its note
    marker = os.path.join(tempfile.gettempdir(), f"rx-marker-{uuid.uuid4().hex}")
    message = Message.objects.create(channel="rx-slow", body=marker)
    wait_for(lambda: os.path.exists(marker), what="the handler to start")
    # When the worker is killed inside the handler's transaction and a new one starts
    reacting_worker.kill()
    assert notes("rx-slow:") == []  # the killed transaction's note never committed
    reacting_worker.start()
    # Then the change is handled again, and its effects exist exactly once
    wait_for(lambda: notes(f"rx-slow:{message.pk}"), what="the handler to run again")
    wait_for(lambda: reaction("testapp:slow_once").handled == 1, what="the cursor to move")
    assert notes("rx-slow:") == [f"rx-slow:{message.pk}"]
    os.unlink(marker)


def test_two_workers_racing_handle_each_change_once(
    reacting_worker: CeleryProcess, make_celery: Callable[..., CeleryProcess], redis_url: str
) -> None:
    # Given a second worker with its own dispatcher
    second = make_celery("worker", redis_url, name="second", env=DISPATCHER_ON)
    second.start()
    # When changes arrive one by one while both workers drain the same reaction
    for i in range(40):
        Account.objects.create(name=f"rx-race-{i}", balance=i)
    # Then each was handled exactly once
    wait_for(lambda: len(notes("rx-account:insert:rx-race-")) >= 40, what="40 reactions")
    bodies = notes("rx-account:insert:rx-race-")
    assert sorted(bodies) == sorted(f"rx-account:insert:rx-race-{i}:None:{i}" for i in range(40))
    assert reaction("testapp:account_changed").handled == 40


def test_skip_and_retry_reject_unknown_or_healthy_reactions() -> None:
    runner.ensure_rows()
    with pytest.raises(CommandError, match="No reaction is named 'nope'"):
        call_command("reactive_triggers", "retry", "nope")
    with pytest.raises(CommandError, match="only a failed or fallen behind"):
        call_command("reactive_triggers", "skip", "testapp:account_changed")
    with pytest.raises(CommandError, match="needs a reaction name"):
        call_command("reactive_triggers", "skip")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, "batch= must be a whole number of at least 1"),
        ({"batch": True}, "batch= must be a whole number"),
        ({"ops": ("insert", "upsert")}, "ops= must be some of"),
        ({"ops": ()}, "ops= must be some of"),
        ({"where": {"flag": True}}, "where= must be a Q object"),
    ],
)
def test_bad_options_fail_at_declaration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        on_change(Message, **kwargs)(lambda ctx, change: None)  # type: ignore[arg-type]


def test_unmanaged_models_and_async_handlers_are_refused() -> None:
    from django.contrib.auth.models import AbstractUser

    with pytest.raises(DefinitionError, match="abstract, a proxy or unmanaged"):
        on_change(AbstractUser)
    with pytest.raises(DefinitionError, match="needs a model class"):
        on_change("testapp.Message")  # type: ignore[arg-type]

    async def handler(ctx: object, change: object) -> None: ...

    with pytest.raises(DefinitionError, match="plain function"):
        on_change(Message)(handler)


def test_a_where_reaching_another_table_is_refused_by_e022() -> None:
    from reactive.checks import check_reactions_and_migrations
    from tests.testapp.models import Sample

    other = on_change(Sample, where=Q(note__body="x"), name="tests:other")(
        lambda ctx, change: None)
    try:
        with pytest.raises(DefinitionError, match="reaches another table"):
            where_sql(other)
        assert "reactive.E022" in [m.id for m in check_reactions_and_migrations()]
    finally:
        registry._reactions.pop("tests:other", None)


def test_control_status_lists_every_registered_reaction() -> None:
    runner.ensure_rows()
    rows = {s.name: s for s in control.status()}
    assert {"testapp:account_changed", "testapp:messages_batched"} <= set(rows)
    assert rows["testapp:account_changed"].registered
    assert rows["testapp:account_changed"].state == "active"
