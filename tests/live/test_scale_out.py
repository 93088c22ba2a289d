"""Scale-out: two ASGI server processes, each with its own Reactor, on one database. Postgres
is the only thing they share, so a write through either reaches subscribers on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reactive.functions.runtime import in_thread
from tests.conftest import NodeClient
from tests.support import servers
from tests.support.syncclient import SyncClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def second_server_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    """Server B: another process serving the same test database as ``live_server_url`` (A)."""
    with servers.serving(test_database_url, redis_url) as server:
        yield server.url


def test_npm_subscriptions_on_one_server_see_writes_through_the_other(
    live_server_url: str, second_server_url: str, node_client: NodeClient
) -> None:
    # Given npm clients subscribed on server A and on server B
    out = node_client.run("scale_out.mjs", live_server_url,
                          {"urlB": second_server_url, "prefix": "s:"})
    assert out["initial"] == {"a": [], "b": []}
    # When notes are written through A's websocket, A's HTTP API, then B's websocket
    # Then both servers' subscribers see every write
    assert out["final"]["a"] == out["final"]["b"] == ["s:ws-a", "s:http-a", "s:ws-b"]
    # ... and the writer's own server showed each websocket write when its promise resolved
    assert "s:ws-a" in out["wsOnA"]["resolvedSeen"]["a"]
    assert "s:ws-b" in out["wsOnB"]["resolvedSeen"]["b"]
    assert Note.objects.filter(body__startswith="s:").count() == 3


async def test_a_server_that_held_no_subscription_before_a_write_still_gets_it(
    live_server_url: str, second_server_url: str
) -> None:
    # Given a protocol-level client on B, and a mutation on A that commits first
    async with SyncClient(live_server_url) as on_a, SyncClient(second_server_url) as on_b:
        response = await on_a.mutation("testapp:add_note", {"body": "t:before"})
        assert response["success"], response
        # When B's client subscribes afterwards, then its first result includes the write
        query = await on_b.subscribe("testapp/clients:list_bodies", {"prefix": "t:"})
        assert await on_b.result(query) == ["t:before"]
        # ... and a later write on A is pushed to it, in an unbroken Transition chain
        await on_a.mutation("testapp:add_note", {"body": "t:after"})
        assert await on_b.result(query, lambda v: len(v) == 2) == ["t:before", "t:after"]


async def test_a_mutation_resent_to_the_other_server_is_not_applied_twice(
    live_server_url: str, second_server_url: str
) -> None:
    # Given a mutation that committed through server A
    async with SyncClient(live_server_url) as on_a:
        first = await on_a.mutation("testapp:add_note", {"body": "g:once"})
    # When the client reconnects through the load balancer to server B and re-sends it, as
    # the npm client does (same sessionId, same requestId; protocol §4.6)
    resent = SyncClient(second_server_url)
    resent.session_id = on_a.session_id
    async with resent:
        again = await resent.mutation("testapp:add_note", {"body": "g:once"})
    # Then B answers with the stored result and the note exists once (G2 across processes)
    assert first["success"] and again["success"], (first, again)
    assert again["result"] == first["result"]
    assert await in_thread(Note.objects.filter(body="g:once").count) == 1
