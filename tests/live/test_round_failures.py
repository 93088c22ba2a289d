"""A round whose database connection breaks fails as a whole and is retried: the server's
backends are terminated while a round re-runs many live queries of a real npm client, and
every query still converges, none left holding a connection error. A user's database error
(an invalid cast) stays that query's error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.conftest import JS_DIR
from tests.support import servers
from tests.support.clientproc import ClientProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

QUERIES = 40
NAP = 0.02  # seconds per query: a round re-running all of them lasts QUERIES * NAP at least
TERMINATIONS = 6


@pytest.fixture
def own_server(test_database_url: str, redis_url: str) -> Iterator[servers.AsgiServer]:
    """A server of this test's own: its connections are the ones terminated."""
    with servers.serving(test_database_url, redis_url) as server:
        yield server


def terminate_round() -> int:
    """Terminate the other backends inside a transaction (the Reactor's round is one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                       "AND xact_start IS NOT NULL AND backend_type = 'client backend'")
        (count,) = cursor.fetchone()
    return int(count)


def test_connections_terminated_mid_round_leave_no_query_in_error(
    own_server: servers.AsgiServer, node: str
) -> None:
    prefix = "lost:"
    client = ClientProcess([node, "round_errors.mjs"], cwd=JS_DIR, env={
        "SERVER_URL": own_server.url,
        "PAYLOAD": json.dumps({"prefix": prefix, "count": QUERIES, "seconds": NAP})})
    try:
        client.event("ready", timeout=60)
        for n in range(1, TERMINATIONS + 1):
            # Given a write that makes the Reactor re-run every query (a long round)
            Note.objects.create(body=f"{prefix}{n}")
            # When the server's connections are terminated while that round runs
            wait_for(terminate_round, what="a round to break", interval=0.005)
        # Then, after one more write, every query converges on the right count
        Note.objects.create(body=f"{prefix}last")
        client.send(f"expect {TERMINATIONS + 1}")
        outcome = client.wait(lambda m: m["event"] in ("converged", "stuck"), "convergence",
                              timeout=90)
        assert outcome["event"] == "converged", outcome
        # ... no query ever got a connection error as its result
        assert outcome["errorsSeen"] == 0, outcome
        assert outcome["stillInError"] == 0, outcome
        # ... while a user's own database error stays that query's error
        assert "Server Error" in outcome["castError"], outcome
        client.send("quit")
        client.event("done")
    finally:
        client.close()
    assert "reactor round failed" in own_server.log_path.read_text(), "no round was broken"
