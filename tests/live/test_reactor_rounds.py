"""The Reactor's round, phase by phase, in this process: a real database, no server, sessions
played by a handle that records what the round would send."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
import pytest
from django.db import connection

from reactive import values
from reactive.capture import log
from reactive.functions.runtime import Outcome
from reactive.live.inbox import (
    AddRequest,
    MutationDone,
    QuerySetChanged,
    SessionClosed,
)
from reactive.live.reactor import Reactor
from reactive.models import SessionRequest
from tests.support.changelog import dsn
from tests.support.rounds import Session, step
from tests.testapp.models import Item, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def reactor() -> Reactor:
    return Reactor(prune=False)


def subscribe(session: Session, version: int, *queries: tuple[int, str]) -> QuerySetChanged:
    adds = tuple(AddRequest(qid, path, {}, None) for qid, path in queries)
    return QuerySetChanged(session, version, adds, ())


def bodies(value: Any) -> list[str]:
    return [note["body"] for note in value]


def test_begin_the_first_round_takes_a_snapshot_and_runs_new_queries(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    assert reactor.counts()["executions"] == 1
    assert bodies(session.updates()[1]) == []
    # A round with nothing new runs nothing and sends nothing
    sent = len(session.messages)
    step(reactor)
    assert reactor.counts()["executions"] == 1 and len(session.messages) == sent


def test_begin_a_log_pruned_past_the_snapshot_re_runs_every_query(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes"), (2, "testapp:echo")))
    Note.objects.create(body="pruned before it was read")
    with connection.cursor() as cursor:  # the row ages past the retention, then goes
        # (no server-side reaction holds the log here: their cursors would keep the row)
        cursor.execute("DELETE FROM reactive_reaction")
        cursor.execute("UPDATE reactive_change SET created_at = now() - interval '30 days'")
        assert log.prune(cursor) >= 1
    step(reactor)
    # Both queries re-ran, the unaffected one too: the round could not know what it missed
    assert reactor.counts()["executions"] == 4
    assert bodies(session.updates()[1]) == ["pruned before it was read"]


def test_log_read_reads_each_row_of_the_tables_read_sets_involve_once(reactor: Reactor) -> None:
    step(reactor, subscribe(Session(), 1, (1, "testapp:list_notes")))
    Note.objects.bulk_create([Note(body="a"), Note(body="b")])
    Item.objects.create(name="i", price=1)  # a table no read set involves: not read
    step(reactor)
    assert reactor.counts()["changes"] == 2
    step(reactor)
    assert reactor.counts()["changes"] == 2  # read once


def test_log_read_reads_every_table_once_a_read_set_is_everything(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes"),
                            (2, "testapp/bench:opaque_item_count")))
    Note.objects.create(body="a")
    Item.objects.create(name="i", price=1)
    step(reactor)
    assert reactor.counts()["changes"] == 2
    assert session.updates()[2] == 1


def test_a_round_is_due_only_for_a_notified_table_some_read_set_involves(
    reactor: Reactor,
) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    assert not reactor.round_due()  # nothing happened since the round
    reactor.notified("testapp_item")
    assert not reactor.round_due()
    reactor.notified("testapp_note")
    assert reactor.round_due()
    step(reactor)
    reactor.notified("")  # a trigger that names no table: any table
    assert reactor.round_due()
    step(reactor)
    # A session's request is always due; once a read set is everything, so is every table
    reactor.post(subscribe(session, 2, (2, "testapp/bench:opaque_item_count")))
    assert reactor.round_due()
    step(reactor, *reactor._inbox)  # what the loop does: hand the queued requests over
    reactor._inbox.clear()
    reactor.notified("testapp_item")
    assert reactor.round_due()


def test_a_commit_skipped_before_a_query_read_its_table_is_in_that_query_s_first_result(
    reactor: Reactor,
) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    Item.objects.create(name="skipped", price=1)  # no read set involves items yet
    reactor.notified("testapp_item")
    assert not reactor.round_due()
    step(reactor, subscribe(session, 2, (2, "testapp/bench:opaque_item_count")))
    assert session.updates()[2] == 1


def test_match_re_runs_only_queries_whose_read_set_a_change_touches(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes"), (2, "testapp:echo")))
    assert reactor.counts()["executions"] == 2
    Item.objects.create(name="not read by either", price=1)
    step(reactor)
    assert reactor.counts()["executions"] == 2
    Note.objects.create(body="n")
    step(reactor)
    assert reactor.counts()["executions"] == 3
    assert bodies(session.updates()[1]) == ["n"]


def test_rerun_once_per_distinct_query_and_only_changes_are_sent(reactor: Reactor) -> None:
    a, b = Session(), Session()
    step(reactor, subscribe(a, 1, (1, "testapp:list_notes")),
         subscribe(b, 1, (5, "testapp:list_notes")))
    assert reactor.counts()["executions"] == 1
    note = Note.objects.create(body="x")
    step(reactor)
    assert reactor.counts()["executions"] == 2
    assert bodies(a.updates()[1]) == bodies(b.updates()[5]) == ["x"]
    # A write that leaves the result as it was re-runs the query but sends nothing
    sent = len(a.messages), len(b.messages)
    Note.objects.filter(pk=note.pk).update(body="x")
    step(reactor)
    assert reactor.counts()["executions"] == 3
    assert (len(a.messages), len(b.messages)) == sent


def test_send_mutation_responses_then_one_transition_and_nothing_after_close(
    reactor: Reactor,
) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    Note.objects.create(body="by a mutation")
    step(reactor, MutationDone(session, 9, Outcome(value="1")))
    response, transition = session.messages[-2:]
    assert response["type"] == "MutationResponse" and response["requestId"] == 9
    assert response["ts"] == transition["endVersion"]["ts"]
    assert transition["startVersion"] == session.messages[0]["endVersion"]
    assert bodies(transition["modifications"][0]["value"]) == ["by a mutation"]
    # A closed session is forgotten, and so is its query
    step(reactor, SessionClosed(session))
    assert reactor.counts()["sessions"] == 0 and reactor.counts()["queries"] == 0
    sent = len(session.messages)
    Note.objects.create(body="after close")
    step(reactor)
    assert len(session.messages) == sent


def test_a_committed_mutation_holds_its_sessions_transitions_until_its_response(
    reactor: Reactor,
) -> None:
    session, other = Session(), Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")),
         subscribe(other, 1, (1, "testapp:list_notes")))
    # Given a mutation in flight on one session that has committed (its request row and its
    # write), with its MutationDone not taken in yet
    reactor.mutations.started(session, "s-1", 4)
    step(reactor)
    Note.objects.create(body="by the mutation")
    SessionRequest.objects.create(session_id="s-1", request_id=4, result={"value": None}, ts=1)
    sent = len(session.messages)
    # When a round runs: the other session gets the write; this one nothing yet
    step(reactor)
    assert len(session.messages) == sent
    assert bodies(other.updates()[1]) == ["by the mutation"]
    # Then the round that takes in the MutationDone sends the response, then the Transition
    step(reactor, MutationDone(session, 4, Outcome(value=None)))
    response, transition = session.messages[sent:]
    assert response["type"] == "MutationResponse" and response["requestId"] == 4
    assert bodies(transition["modifications"][0]["value"]) == ["by the mutation"]


def test_a_mutation_in_flight_not_yet_committed_holds_nothing(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    reactor.mutations.started(session, "s-2", 1)
    Note.objects.create(body="by someone else")
    step(reactor)
    assert bodies(session.updates()[1]) == ["by someone else"]
    # A closed session's mutations are forgotten
    step(reactor, SessionClosed(session))
    assert reactor.mutations.committed(connection.cursor()) == set()


def test_a_failed_round_loses_no_request_and_the_next_one_answers_it(reactor: Reactor) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    # Given the round's connection killed by the server
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # When a round with a finished mutation fails
    with pytest.raises(Exception):  # noqa: B017,PT011  (whatever the driver raises)
        reactor.run_round([MutationDone(session, 3, Outcome(value=None))])
    sent = len(session.messages)
    # Then the next round reconnects and answers it, followed by a Transition
    step(reactor)
    response, transition = session.messages[sent:]
    assert response["requestId"] == 3 and transition["type"] == "Transition"


def test_rerun_on_several_connections_sees_the_round_s_snapshot_only() -> None:
    # Given 12 distinct queries on a Reactor that re-runs on 3 connections
    reactor, session = Reactor(prune=False, rerun_connections=3), Session()
    try:
        _rerun_twelve(reactor, session)
    finally:
        reactor.rerunner.shutdown()


def _rerun_twelve(reactor: Reactor, session: Session) -> None:
    queries = [(i, "testapp:list_notes") for i in range(12)]
    adds = tuple(AddRequest(qid, path, {"limit": 100 + qid}, None) for qid, path in queries)
    step(reactor, QuerySetChanged(session, 1, adds, ()))
    assert reactor.counts()["executions"] == 12
    # When a write invalidates all of them and a round re-runs them concurrently
    Note.objects.bulk_create([Note(body="a"), Note(body="b")])
    step(reactor)
    # Then each was re-run once and every result shows exactly that commit
    assert reactor.counts()["executions"] == 24
    assert {tuple(sorted(bodies(v))) for v in session.updates().values()} == {("a", "b")}
    # ... and a Transition chain continues unbroken
    versions = [m for m in session.messages if m["type"] == "Transition"]
    assert all(b["startVersion"] == a["endVersion"] for a, b in itertools.pairwise(versions))


def test_a_query_s_sql_error_spoils_neither_the_round_nor_the_queries_after_it(
    reactor: Reactor,
) -> None:
    # Given queries that fail in SQL (one raises, one catches the error and reads on, one
    # writes, which Django marks for rollback) run in the same rounds as, and before, healthy
    # ones: they share one savepoint
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp/bench:notes_after_sql_error"),
                            (2, "testapp:list_notes")),
         QuerySetChanged(session, 2, (AddRequest(3, "testapp/bench:notes_after_sql_error",
                                                 {"swallow": True}, None),
                                      AddRequest(5, "testapp:write_in_query", {}, None),
                                      AddRequest(4, "testapp:list_notes", {"limit": 5}, None)),
                         ()))
    Note.objects.create(body="after the errors")
    step(reactor)
    # Then the failing ones failed, each with its own error, and the healthy ones read on
    failed = {change["queryId"]: change["errorMessage"] for message in session.messages
              for change in message.get("modifications", []) if change["type"] == "QueryFailed"}
    assert set(failed) == {1, 3, 5}
    assert "division by zero" in failed[1] and "aborted" in failed[3]
    assert "read-only" in failed[5]
    updates = session.updates()
    assert bodies(updates[2]) == ["after the errors"] == bodies(updates[4])
    assert not connection.in_atomic_block


def test_news_goes_out_before_commit_only_when_the_clock_reservation_covers_it(
    reactor: Reactor,
) -> None:
    session = Session()
    step(reactor, subscribe(session, 1, (1, "testapp:list_notes")))
    seen: list[tuple[bool, int]] = []

    def send(deliveries: list[Any]) -> None:  # called in this (the round's) thread
        seen.append((connection.in_atomic_block, len(deliveries)))
        for handle, messages in deliveries:
            handle.deliver(messages)

    # Given a write, a round with a sender sends the news while its snapshot is still open
    Note.objects.create(body="one")
    assert reactor.run_round([], send) == []
    assert seen == [(True, 1)] and bodies(session.updates()[1]) == ["one"]
    # When the persisted clock reservation is behind the round's timestamp, it sends after
    # COMMIT and the reservation that covers it
    reactor.upkeep._reserved = 1
    Note.objects.create(body="two")
    assert reactor.run_round([], send) == []
    assert seen[1] == (False, 1) and bodies(session.updates()[1]) == ["one", "two"]
    assert reactor.upkeep.covers(values.decode_ts(session.messages[-1]["endVersion"]["ts"]))


def test_a_mutation_registered_while_the_round_opened_is_still_asked_about(
    reactor: Reactor,
) -> None:
    # Given the registrations read before a round's snapshot was taken (none) and a mutation
    # that registered and committed after that read
    session = Session()
    asked = reactor.mutations.running()
    reactor.mutations.started(session, "s-9", 1)
    SessionRequest.objects.create(session_id="s-9", request_id=1, result={"value": None}, ts=1)
    # Then the question for the registrations not asked about finds it
    with connection.cursor() as cursor:
        assert reactor.mutations.committed_since(cursor, asked) == {session}
        assert reactor.mutations.committed_since(cursor, reactor.mutations.running()) == set()
