"""reactive.testing: the test kit users get, exercised the way its docs show."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connections

from reactive import FunctionError
from reactive.exceptions import FunctionNotFound
from reactive.testing import Caller, drain_jobs
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_caller_runs_functions_as_a_user() -> None:
    ada = Caller.for_user(User.objects.create_user("ada"))
    assert ada.query("testapp:whoami")["user"] == "ada"
    new_id = ada.mutation("testapp:add_note", body="hi")
    assert Note.objects.get(pk=int(new_id)).author.username == "ada"
    with pytest.raises(FunctionError) as info:
        ada.mutation("testapp:add_note", body=" ")
    assert info.value.data == {"code": "EMPTY", "field": "body"}


def test_caller_cannot_reach_internal_functions_unless_admin() -> None:
    with pytest.raises(FunctionNotFound):
        Caller().query("testapp:secret")
    assert Caller.admin().query("testapp:secret") == "internal"


def test_subscription_sees_the_next_result_after_a_commit() -> None:
    caller = Caller()
    with caller.subscribe("testapp:list_notes") as notes:
        assert notes.value == []
        caller.mutation("testapp:add_note", body="first")
        assert [n["body"] for n in notes.next()] == ["first"]


def test_subscription_sees_writes_from_other_threads() -> None:
    with Caller().subscribe("testapp:list_notes") as notes:
        def write() -> None:
            Note.objects.create(body="elsewhere")
            connections.close_all()  # this thread's connection

        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
        assert [n["body"] for n in notes.next(timeout=5)] == ["elsewhere"]


def test_subscription_next_times_out_when_nothing_relevant_changes() -> None:
    with Caller().subscribe("testapp:get_note", id="999") as note:
        assert note.value is None
        Note.objects.create(body="not this one")  # a different id: no re-run needed
        with pytest.raises(TimeoutError, match="No new result"):
            note.next(timeout=0.5)


def test_drain_jobs_runs_due_jobs_and_jobs_they_schedule_without_a_worker() -> None:
    # Given a job due in an hour (scheduled by a mutation)
    caller = Caller()
    caller.mutation("testapp/jobs:schedule_note", body="later", delay=3600)
    assert drain_jobs() == []  # nothing due yet
    # When time is advanced past it
    states = drain_jobs(advance=datetime.timedelta(hours=2))
    # Then it ran, here, exactly once
    assert states == ["success"]
    assert caller.query("testapp/jobs:has_note", body="later") is True
    assert drain_jobs(advance=datetime.timedelta(hours=2)) == []
