"""The change log is kept for reactions: never pruned past the oldest cursor of a reaction that
moved within REACTION_MAX_LAG; past that limit the reaction is marked fallen behind, loudly."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from reactive.capture import log
from reactive.checks import check_reaction_health
from reactive.models import Reaction, ReactionState
from reactive.reactions import runner
from reactive.reactions.definitions import registry
from tests.testapp.models import Account, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

NAME = "testapp:account_changed"


def _age_log(seconds: float) -> None:
    # Far in the past, so the pruned horizon (which only moves forward, across tests) stays
    # older than what tests/capture's prune tests backdate.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reactive_change SET created_at = now() - interval '400 days' "
                       "- %s * interval '1 second'", [seconds])


def _prune() -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        return log.prune(cursor)


def _account_changes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reactive_change WHERE tbl = 'testapp_account'")
        return int(cursor.fetchone()[0])


def test_prune_keeps_what_an_active_reaction_still_needs(settings: Any) -> None:
    # Given a reaction whose cursor is before three changes, all older than the retention
    settings.REACTIVE = {**settings.REACTIVE, "CHANGE_LOG_RETENTION": 1}
    Reaction.objects.all().delete()
    runner.ensure_rows([registry.get(NAME)])
    for i in range(3):
        Account.objects.create(name=f"rx-floor-{i}", balance=i)
    _age_log(3600)
    # When the log is pruned, those rows stay
    _prune()
    assert _account_changes() == 3
    # And once the reaction handled them, they go
    assert runner.drain(NAME) is runner.Step.IDLE
    assert Note.objects.filter(body__startswith="rx-account:insert:rx-floor-").count() == 3
    _age_log(3600)
    _prune()
    assert _account_changes() == 0


def test_a_reaction_past_max_lag_stops_holding_the_log_and_falls_behind_loudly(
    settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a reaction that has not moved for longer than REACTION_MAX_LAG
    settings.REACTIVE = {**settings.REACTIVE, "CHANGE_LOG_RETENTION": 1, "REACTION_MAX_LAG": 60}
    Reaction.objects.all().delete()
    runner.ensure_rows([registry.get(NAME)])
    Account.objects.create(name="rx-lost", balance=1)
    Reaction.objects.filter(name=NAME).update(cursor_at=timezone.now() - datetime.timedelta(
        seconds=120))
    _age_log(3600)
    # When the log is pruned, the change it needed goes
    assert _prune() >= 1
    # Then its next run marks it fallen behind instead of skipping silently
    assert runner.drain(NAME) is runner.Step.WAITING
    assert Reaction.objects.get(name=NAME).state == ReactionState.FALLEN_BEHIND
    assert "reaction fell behind reaction=testapp:account_changed" in caplog.text
    assert [m.id for m in check_reaction_health(databases=["default"])] == ["reactive.W021"]
    assert not Note.objects.filter(body__contains="rx-lost").exists()
    # And skip resumes it from the present
    call_command("reactive_triggers", "skip", NAME, stdout=StringIO())
    Account.objects.create(name="rx-after", balance=2)
    assert runner.drain(NAME) is runner.Step.IDLE
    assert Note.objects.filter(body="rx-account:insert:rx-after:None:2").exists()
    assert check_reaction_health(databases=["default"]) == []
