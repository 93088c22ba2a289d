"""How a project routes websockets: ``sync_websocket`` serves the sync protocol itself (the
session cookie read by Django's rules) and hands every other path to the project's own
application; without one, other paths are refused. Routed as earlier versions documented,
below Channels' ``AuthMiddlewareStack(URLRouter(websocket_urlpatterns))``, it still works."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import websockets
from django.contrib.auth.models import User
from django.test import Client, override_settings

from reactive.functions.transaction import in_thread
from reactive.live.endpoint import SyncRouter
from tests.support.servers import serving
from tests.support.syncclient import SyncClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def channels_routed_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    """The test project with the sync endpoint below Channels' URLRouter and middleware."""
    with serving(test_database_url, redis_url, REACTIVE_TEST_ROUTING="channels") as server:
        yield server.url


def session_cookie(username: str) -> str:
    """The ``Cookie`` header of a browser logged in as a new user ``username``."""
    browser = Client()
    browser.force_login(User.objects.create_user(username, password="not-used-here"))
    return f"theme=dark; sessionid={browser.cookies['sessionid'].value}"


async def whoami(url: str, cookie: str | None) -> str | None:
    headers = {"Cookie": cookie} if cookie is not None else {}
    async with SyncClient(url, headers=headers) as client:
        user = (await client.result(await client.subscribe("testapp:whoami")))["user"]
        return None if user is None else str(user)


async def echo(url: str, text: str, cookie: str | None = None) -> str:
    headers = {"Cookie": cookie} if cookie is not None else {}
    async with websockets.connect(url.replace("http://", "ws://") + "/echo/",
                                  additional_headers=headers, open_timeout=10) as socket:
        await socket.send(text)
        return str(await socket.recv(decode=True))


@pytest.mark.parametrize("routing", ["sync_websocket", "channels"])
async def test_the_session_cookie_gives_the_sync_session_its_user(
    routing: str, live_server_url: str, channels_routed_url: str,
) -> None:
    url = live_server_url if routing == "sync_websocket" else channels_routed_url
    # Given a browser logged in to Django, and its session cookie among others
    cookie = await in_thread(session_cookie, f"routed-{routing}")
    # Then a sync session opened with the cookie is that user, one without it anonymous
    assert await whoami(url, cookie) == f"routed-{routing}"
    assert await whoami(url, None) is None


@pytest.mark.parametrize("cookie", [
    "sessionid=no-such-session-key-0123456789",  # a key no session has
    "sessionid=",  # empty
    "sessionid",  # no value
    ";;;=;  =x; sessionid=%%%",  # garbage around a key that cannot be one
    'sessionid="quoted ; value"; other=1',  # quotes and a separator inside the value
    "a" * 8000,  # one long name, no value
])
async def test_a_bad_session_cookie_is_anonymous_and_harms_nobody(
    cookie: str, live_server_url: str,
) -> None:
    # Given a handshake whose Cookie header is wrong in some way
    # Then the session opens anonymous and works
    assert await whoami(live_server_url, cookie) is None
    # And the server still serves everyone else
    assert await whoami(live_server_url, None) is None


async def test_other_websocket_paths_go_to_the_projects_own_application(
    live_server_url: str,
) -> None:
    # Given sync_websocket(fallback=AuthMiddlewareStack(URLRouter([echo])))
    cookie = await in_thread(session_cookie, "echoing")
    # Then /echo/ reaches the project's consumer, with the user its middleware resolved
    assert await echo(live_server_url, "hello") == "anonymous: hello"
    assert await echo(live_server_url, "hello", cookie) == "echoing: hello"
    # And a path neither serves is the project router's to refuse (Channels' URLRouter
    # raises "No route found", which the server answers with HTTP 500)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(live_server_url.replace("http://", "ws://")
                                      + "/nothing-here/", open_timeout=10):
            pass
    assert refused.value.response.status_code == 500


async def test_the_sync_endpoint_below_channels_router_serves_live_queries(
    channels_routed_url: str,
) -> None:
    # Given the sync endpoint routed by Channels' URLRouter, as earlier versions documented
    async with SyncClient(channels_routed_url) as reader, SyncClient(channels_routed_url) as writer:
        query = await reader.subscribe("testapp:search_notes",
                                       {"filter": {"contains": "routed:"}})
        assert await reader.result(query) == []
        # When another session writes, the reader's subscription updates
        await writer.mutation("testapp:add_note", {"body": "routed:one"})
        notes = await reader.result(query, lambda value: len(value) == 1)
        assert notes[0]["body"] == "routed:one"
    # And its own /echo/ route still answers
    assert await echo(channels_routed_url, "hi") == "anonymous: hi"


async def handshake(path: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, object]]:
    """What ``sync_websocket()`` sends to an ASGI server for a client's handshake that would
    be refused (the client sends nothing after ``websocket.connect``)."""
    sent: list[dict[str, object]] = []
    incoming: Iterator[dict[str, object]] = iter([{"type": "websocket.connect"}])

    async def receive() -> dict[str, object]:
        return next(incoming)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await SyncRouter()({"type": "websocket", "path": path, "headers": headers}, receive, send)
    return sent


async def test_a_cookie_whose_session_store_fails_is_refused_in_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a session store that fails on every read (Django's own cache and file stores
    # swallow their errors, so this one fails to load at all: an engine that is not there)
    cookie = [(b"cookie", b"sessionid=abcdefgh12345678abcdefgh12345678")]
    # When a handshake carries a session cookie
    with (override_settings(SESSION_ENGINE="tests.no_such_session_store"),
          caplog.at_level(logging.ERROR, "reactive")):
        sent = await handshake("/api/sync", cookie)
    # Then it is refused (a logged-in page must not be served as anonymous; the client
    # retries), with one log line naming the failure and no traceback
    assert sent == [{"type": "websocket.close", "code": 1000}]
    [record] = [r for r in caplog.records if r.name.startswith("reactive")]
    assert "session cookie could not be checked" in record.getMessage()
    assert "no_such_session_store" in record.getMessage() and record.exc_info is None


async def test_without_a_fallback_other_paths_are_refused() -> None:
    # Given sync_websocket() with no fallback, called as an ASGI server would, for a path
    # that is not the sync protocol's
    sent = await handshake("/ws/chat/", [])
    # Then the handshake is closed before it is accepted (the server answers HTTP 403)
    assert sent == [{"type": "websocket.close", "code": 1000}]
