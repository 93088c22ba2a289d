"""@on_change(..., action=True): the handler is an action (no transaction, writes through
mutations), handled at least once, in commit order, retried and parked like a mutation
handler; against a real Celery worker with its dispatcher, on real Postgres and Redis."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

from reactive import on_change
from reactive.exceptions import DefinitionError
from reactive.models import Reaction, ReactionState
from reactive.reactions import runner
from tests.reactions.reading import notes, reaction
from tests.support.fixtures_celery import CeleryProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Message, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_an_action_handler_sees_every_change_in_commit_order(
    reacting_worker: CeleryProcess,
) -> None:
    # When messages are written one transaction at a time
    for i in range(6):
        Message.objects.create(channel="rx-act", body=f"m{i}")
    # Then the action ran for each, in commit order, and its mutation's writes committed
    wait_for(lambda: len(notes("rx-act:m")) >= 6, what="six action runs")
    assert notes("rx-act:m") == [f"rx-act:m{i}" for i in range(6)]
    wait_for(lambda: reaction("testapp:act_on_message").handled == 6, what="the cursor")


def test_kill_9_mid_action_runs_it_again_at_least_once(reacting_worker: CeleryProcess) -> None:
    # Given an action that hangs, the first time, after its mutation committed
    marker = os.path.join(tempfile.gettempdir(), f"rx-act-marker-{uuid.uuid4().hex}")
    Message.objects.create(channel="rx-act", body=marker)
    wait_for(lambda: os.path.exists(marker), what="the action to start")
    wait_for(lambda: notes(f"rx-act:{marker}"), what="the action's first write")
    # When the worker is killed before the cursor moved, and a new one starts
    reacting_worker.kill()
    assert reaction("testapp:act_on_message").handled == 0
    reacting_worker.start()
    # Then the action runs again (at least once: its write is there twice), and the cursor
    # moves past the change exactly once
    wait_for(lambda: reaction("testapp:act_on_message").handled == 1, what="the cursor")
    assert notes(f"rx-act:{marker}") == [f"rx-act:{marker}"] * 2
    Message.objects.create(channel="rx-act", body="after")
    # (an action's write commits before its cursor moves, in a transaction of its own)
    wait_for(lambda: reaction("testapp:act_on_message").handled == 2, what="the next change")
    assert notes("rx-act:after") == ["rx-act:after"]
    os.unlink(marker)


def test_a_failing_action_is_retried_then_parked_and_blocks_later_changes(
    reacting_worker: CeleryProcess,
) -> None:
    Message.objects.create(channel="rx-act", body="boom")
    Message.objects.create(channel="rx-act", body="later")
    parked = wait_for(lambda: Reaction.objects.filter(
        name="testapp:act_on_message", state=ReactionState.FAILED).first(), what="parking")
    assert parked.attempts == 3
    assert "ValueError: boom is not allowed" in parked.error
    assert notes("rx-act:later") == []


def test_an_async_action_handler_takes_batches_in_order() -> None:
    runner.ensure_rows()
    Message.objects.bulk_create([Message(channel="rx-act-async", body=f"a{i}")
                                 for i in range(15)])
    assert runner.drain("testapp:act_async") is runner.Step.IDLE
    assert notes("rx-act-async:") == [
        "rx-act-async:" + ",".join(f"a{i}" for i in range(10)),
        "rx-act-async:" + ",".join(f"a{i}" for i in range(10, 15)),
    ]
    assert reaction("testapp:act_async").handled == 15


def test_an_action_handler_cannot_write_directly() -> None:
    from django.db.models import Q

    from reactive.exceptions import ReadOnlyError

    def writes(ctx: object, change: object) -> None:
        Note.objects.create(body="direct")

    name = "tests:direct_writer"
    on_change(Message, where=Q(channel="rx-direct"), action=True, name=name)(writes)
    try:
        runner.ensure_rows()
        Message.objects.create(channel="rx-direct", body="x")
        assert runner.drain(name) is runner.Step.FAILED
        assert ReadOnlyError.__name__ in reaction(name).error
        assert notes("direct") == []
    finally:
        from reactive.reactions.definitions import registry

        registry._reactions.pop(name, None)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_action_must_be_a_bool(value: object) -> None:
    with pytest.raises(DefinitionError, match="action= must be True or False"):
        on_change(Message, action=value)  # type: ignore[arg-type]
