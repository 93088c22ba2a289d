"""Heartbeats and idle sessions: an idle session hears a Ping within WEBSOCKET_PING_INTERVAL and
stays open; sessions idle past redis-py's 5 s socket timeout (channels_redis#422)
are still open and still get updates."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pytest

from tests.support.servers import AsgiServer, serving
from tests.support.syncclient import SyncClient, http_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

PING_INTERVAL = 1.0  # tests/settings_limits.py
MARGIN = 1.0
IDLE = 6.5  # past redis-py's and channels-redis's 5 s
SESSIONS = 20


@pytest.fixture(scope="module")
def pinging_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    with serving(test_database_url, redis_url,
                 DJANGO_SETTINGS_MODULE="tests.settings_limits") as process:
        yield process.url


@pytest.fixture(scope="module")
def layered(test_database_url: str, redis_url: str) -> Iterator[AsgiServer]:
    """Default timings (Ping after 15 s) and a Redis channel layer, as deployed."""
    with serving(test_database_url, redis_url,
                 DJANGO_SETTINGS_MODULE="tests.settings_layer") as process:
        yield process


def pings(client: SyncClient) -> int:
    return sum(1 for m in client.other if m["type"] == "Ping")


@pytest.mark.parametrize("subscribed", [False, True], ids=["no queries", "subscribed"])
async def test_idle_session_gets_pings_and_stays_open(pinging_url: str,
                                                      subscribed: bool) -> None:
    loop = asyncio.get_running_loop()
    async with SyncClient(pinging_url) as client:
        if subscribed:
            query = await client.subscribe("testapp:echo", {"value": "x"})
            await client.result(query)
        # When the session is idle, a Ping comes within the interval (plus scheduling slack)
        idle_since = loop.time()
        await client.wait_for(lambda: pings(client) >= 1, PING_INTERVAL + MARGIN, tick=0.05)
        assert loop.time() - idle_since >= PING_INTERVAL * 0.9
        # and keeps coming, about once per interval, without the server closing the socket
        for expected in range(2, 5):
            since = loop.time()
            await client.wait_for(lambda n=expected: pings(client) >= n,
                                  PING_INTERVAL + MARGIN, tick=0.05)
            assert loop.time() - since >= PING_INTERVAL * 0.5
        assert [m for m in client.other if m["type"] != "Ping"] == []
        # Then the session still works
        later = await client.subscribe("testapp:echo", {"value": "still open"})
        assert await client.result(later) == "still open"
        response = await client.mutation("testapp:add_note", {"body": "after pings"})
        assert response["success"], response


async def test_sessions_idle_past_redis_timeouts_stay_open_and_get_updates(
    layered: AsgiServer,
) -> None:
    url = layered.url
    clients = [SyncClient(url) for _ in range(SESSIONS)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        queries = [await client.subscribe("testapp:list_notes", {"limit": 1000})
                   for client in clients]
        for client, query in zip(clients, queries, strict=True):
            await client.result(query)
        # When every session is idle (nothing sent either way) past the 5 s timeouts:
        # the wait is the idle period under test; it ends early if any socket closes.
        closed, _ = await asyncio.wait([asyncio.ensure_future(c.ws.wait_closed())
                                        for c in clients], timeout=IDLE)
        for task in _:
            task.cancel()
        assert not closed, "a session was closed while idle"
        # Then a write reaches every one of them
        body = f"after idling {uuid.uuid4().hex}"
        await asyncio.to_thread(http_call, url, "mutation", "testapp:add_note", {"body": body})
        for client, query in zip(clients, queries, strict=True):
            await client.result(query, lambda notes: any(n["body"] == body for n in notes))
            assert client.other == [], client.other  # truly idle: not even a Ping
    log = layered.log_path.read_text(errors="replace")
    assert "TimeoutError" not in log and "Traceback" not in log, log[-3000:]
