"""``QUERY_STATEMENT_TIMEOUT``: a query's SQL statement over the limit, or a query that has run
that long in all, fails that query alone (``QueryTimeout``), in one-shot calls and in the
Reactor's round, where it would otherwise hold up every live query of the process; mutations
are not limited. In this process for the runtime and the round, and over the wire (the PyPI
client, and HTTP) against a server whose limit is 0.5 s (tests/settings_timeout.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from reactive.exceptions import QueryTimeout
from reactive.functions.runtime import Call, runtime
from reactive.functions.snapshots import query_clock
from reactive.live.inbox import AddRequest, QuerySetChanged
from reactive.live.reactor import Reactor
from tests.live.test_python_sync import PyClient
from tests.support import servers
from tests.support.rounds import Session, step
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

SLOW = "testapp/clients:sql_sleep_count"
MANY = "testapp/clients:sql_sleep_many"
MESSAGE = "ran a SQL statement for longer than {limit} s, the limit for queries"
WHOLE = "ran for longer than {limit} s, the limit for queries"


def limited(seconds: float | None) -> Any:
    return override_settings(REACTIVE={**settings.REACTIVE, "QUERY_STATEMENT_TIMEOUT": seconds})


def call(path: str, **args: Any) -> tuple[Any, float]:
    started = time.monotonic()
    outcome = runtime.call(Call(path, args))
    return outcome, time.monotonic() - started


def test_a_query_over_the_limit_fails_alone_and_the_connection_carries_on() -> None:
    Note.objects.create(body="slow:1")
    with limited(0.2):
        # When a query's statement runs past the limit
        outcome, took = call(SLOW, prefix="slow:", seconds=30)

        # Then PostgreSQL cancelled it at the limit, and the query failed saying so
        assert took < 5, took
        assert outcome.code == "QueryTimeout", outcome
        assert f"Query '{SLOW}' {MESSAGE.format(limit='0.2')}" in (outcome.error or "")
        assert "QUERY_STATEMENT_TIMEOUT" in (outcome.error or "")
        # And the next query on the same connection runs normally, as does a slow one under it
        assert call("testapp/clients:list_bodies", prefix="slow:")[0].value == ["slow:1"]
        assert call(SLOW, prefix="slow:", seconds=0.05)[0].value == 1


def test_a_query_of_many_statements_each_under_the_limit_stops_at_it() -> None:
    Note.objects.create(body="many:1")
    with limited(0.3):
        # When a query runs 100 statements of 0.05 s (5 s in all, each one under the limit)
        outcome, took = call(MANY, prefix="many:", statements=100, seconds=0.05)

        # Then it was stopped at its first statement past 0.3 s, saying so
        assert took < 2, took
        assert outcome.code == "QueryTimeout", outcome
        assert f"Query '{MANY}' {WHOLE.format(limit='0.3')}" in (outcome.error or "")
        assert "stopped at its next SQL statement" in (outcome.error or "")
        # And the connection carries on, as does a query of a few statements under the limit
        assert call(MANY, prefix="many:", statements=2, seconds=0.01)[0].value == 1


def test_a_query_called_from_a_query_runs_on_its_callers_clock() -> None:
    Note.objects.create(body="nested:1")
    with limited(0.3):
        # The called query alone is well under the limit
        assert call(MANY, prefix="nested:", statements=1, seconds=0.1)[0].value == 1
        # When a query spends 0.3 s in its own statements, then calls it
        outcome, _ = call("testapp/clients:calls_sql_sleep_many", prefix="nested:",
                          statements=3, seconds=0.1)
    # Then the called query's first statement is refused, in the caller's name
    assert outcome.code == "QueryTimeout", outcome
    assert "Query 'testapp/clients:calls_sql_sleep_many' ran for longer" in (outcome.error or "")


def test_a_query_called_from_a_mutation_is_part_of_it_and_not_limited() -> None:
    Note.objects.create(body="in-mutation:1")
    with limited(0.2):
        outcome, took = call("testapp/clients:reads_sql_sleep_many", prefix="in-mutation:",
                             statements=5, seconds=0.1)
    assert outcome.ok and outcome.value == 1 and took >= 0.5, (outcome, took)


def test_a_query_past_its_time_still_gets_its_savepoint_statements() -> None:
    # Given a query's clock that has run out, inside a transaction (as in a query's atomic())
    with limited(0.01), transaction.atomic(), query_clock("tests:overdue"):
        time.sleep(0.05)
        with connection.cursor() as cursor:
            # Then what cleans up after it still runs, and nothing else does
            cursor.execute("SAVEPOINT overdue")
            with pytest.raises(QueryTimeout, match="Query 'tests:overdue' ran for longer"):
                cursor.execute("SELECT 1")
            cursor.execute("ROLLBACK TO SAVEPOINT overdue")
            cursor.execute("RELEASE SAVEPOINT overdue")
    # And outside the query, statements run again
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_without_a_limit_a_slow_query_runs_to_the_end() -> None:
    Note.objects.create(body="unlimited:1")
    with limited(None):
        outcome, took = call(SLOW, prefix="unlimited:", seconds=0.6)
    assert outcome.ok and outcome.value == 1 and took >= 0.6, (outcome, took)


def test_mutations_are_not_limited() -> None:
    with limited(0.2):
        outcome, took = call("testapp/clients:sql_sleep_add_note", body="m:1", seconds=0.5)
    assert outcome.ok and took >= 0.5, (outcome, took)
    assert Note.objects.filter(body="m:1").exists()


def test_the_limit_is_local_to_the_query_transaction() -> None:
    # A query's limit does not stay on the connection for whatever runs on it next
    with limited(0.2):
        assert call("testapp/clients:list_bodies")[0].ok
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"


def test_a_slow_live_query_does_not_hold_up_the_round(caplog: pytest.LogCaptureFixture) -> None:
    # Given a session on a query whose re-run waits 30 s in SQL, and one on a plain list
    reactor, slow, plain = Reactor(prune=False), Session(), Session()
    Note.objects.create(body="round:1")
    with limited(0.3):
        step(reactor,
             QuerySetChanged(slow, 1, (AddRequest(1, SLOW, {"prefix": "round:",
                                                             "seconds": 30}, None),), ()),
             QuerySetChanged(plain, 1, (AddRequest(1, "testapp/clients:list_bodies",
                                                   {"prefix": "round:"}, None),), ()))

        # When a write invalidates both
        Note.objects.create(body="round:2")
        started = time.monotonic()
        step(reactor)
        took = time.monotonic() - started

    # Then the round took about the limit, not the query's 30 s: the plain query got its
    # update, the slow one a QueryFailed naming the limit
    assert took < 5, took
    assert plain.updates()[1] == ["round:1", "round:2"]
    # (logged once, as the query's failure: not also as a query that held the round)
    assert not [r for r in caplog.records if "held its round" in r.getMessage()]
    failed = [m for message in slow.messages for m in message.get("modifications", [])
              if m["type"] == "QueryFailed"]
    assert failed and MESSAGE.format(limit="0.3") in failed[-1]["errorMessage"], slow.messages


def test_a_live_query_of_many_statements_does_not_hold_up_the_round() -> None:
    # Given a session on a query whose re-run will run 100 statements of 0.05 s (its first
    # run, with no notes yet, runs none), and a session on a plain one
    reactor, many, plain = Reactor(prune=False), Session(), Session()
    with limited(0.3):
        step(reactor,
             QuerySetChanged(many, 1, (AddRequest(1, MANY, {
                 "prefix": "round-many:", "statements": 100, "seconds": 0.05}, None),), ()),
             QuerySetChanged(plain, 1, (AddRequest(1, "testapp/clients:list_bodies",
                                                   {"prefix": "round-many:"}, None),), ()))

        assert many.updates()[1] == 0 and plain.updates()[1] == []

        # When a write invalidates both
        Note.objects.create(body="round-many:1")
        started = time.monotonic()
        step(reactor)
        took = time.monotonic() - started

    # Then the round took about the limit, not 5 s; the plain query got its update
    assert took < 2.5, took
    assert plain.updates()[1] == ["round-many:1"]
    failed = [m for message in many.messages for m in message.get("modifications", [])
              if m["type"] == "QueryFailed"]
    assert failed and WHOLE.format(limit="0.3") in failed[-1]["errorMessage"], many.messages


def test_a_query_slow_in_python_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    # Given a live query whose re-run spends 0.5 s in Python, which no statement limit stops
    reactor, session = Reactor(prune=False), Session()
    Note.objects.create(body="py:1")
    with limited(0.2), caplog.at_level("WARNING", logger="reactive.live.rerun"):
        step(reactor, QuerySetChanged(session, 1, (AddRequest(
            1, "testapp/clients:slow_count", {"prefix": "py:", "seconds": 0.5}, None),), ()))

    # Then it ran to the end, and the log says which query held the round, and for how long
    assert session.updates()[1] == 1
    [record] = [r for r in caplog.records if "held its round" in r.getMessage()]
    assert "function=testapp/clients:slow_count" in record.getMessage()
    assert "not in Python" in record.getMessage()


@pytest.fixture(scope="module")
def limited_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    with servers.serving(test_database_url, redis_url,
                         DJANGO_SETTINGS_MODULE="tests.settings_timeout") as server:
        yield server.url


def test_python_client_sees_the_slow_query_fail_and_the_others_keep_updating(
    limited_url: str,
) -> None:
    client = PyClient(limited_url)
    try:
        # Given a subscription whose query waits 60 s in SQL once a note matches, and another
        slow = client.subscribe(SLOW, {"prefix": "wire:", "seconds": 60})
        plain = client.subscribe("testapp/clients:list_bodies", {"prefix": "wire:"})
        assert client.update(slow) == 0 and client.update(plain) == []

        # When notes are written (the first makes the slow query slow)
        started = time.monotonic()
        for n in range(3):
            assert client.value("mutation", "testapp:add_note", {"body": f"wire:{n}"})

        # Then the plain query has every write within seconds, not minutes, and the slow one
        # failed with the limit's message; the one-shot call fails the same way
        assert client.update(plain, lambda v: len(v) == 3, timeout=20) == [
            "wire:0", "wire:1", "wire:2"]
        assert time.monotonic() - started < 15
        failed = client.process.wait(
            lambda m: m["event"] == "update" and m["id"] == slow and not m["ok"],
            "the slow query's failure", 20)
        assert MESSAGE.format(limit="0.5") in failed["message"], failed
        one_shot = client.call("query", SLOW, {"prefix": "wire:", "seconds": 60}, timeout=20)
        assert not one_shot["ok"] and MESSAGE.format(limit="0.5") in one_shot["message"]
    finally:
        client.close()


def test_an_http_query_over_the_limit_gets_the_error_and_the_next_one_an_answer(
    limited_url: str,
) -> None:
    def post(args: dict[str, Any]) -> tuple[requests.Response, float]:
        started = time.monotonic()
        response = requests.post(f"{limited_url}/api/query", timeout=30,
                                 json={"path": SLOW, "args": args, "format": "json"})
        return response, time.monotonic() - started

    Note.objects.create(body="http:1")
    # When a query's statement would wait 60 s, called as ConvexHttpClient calls it
    response, took = post({"prefix": "http:", "seconds": 60})

    # Then the server answered at the limit with the function's error (HTTP 200, as any
    # function error), and the next request gets its value
    assert took < 10, took
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "error", body
    assert f"Query '{SLOW}' {MESSAGE.format(limit='0.5')}" in body["errorMessage"]
    response, _ = post({"prefix": "http:", "seconds": 0.01})
    assert response.json() == {"status": "success", "value": 1, "logLines": []}
