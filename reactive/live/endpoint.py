"""The sync protocol's websocket as a plain ASGI application.

``SyncEndpoint`` serves one connection in one coroutine: it accepts the handshake (origin and
session cookie checked), hands each client frame to its ``Connection`` and ends the session
when the socket closes. ``SyncRouter`` is a project's whole ``"websocket"`` application: the
sync protocol's paths go to the endpoint, any other websocket to the project's own.

Nothing of Channels runs per connection: no consumer instance, no dispatch task per frame, no
middleware copying the scope, no channel layer. That is about a quarter of what an idle socket
costs the server process (see docs/benchmarks.md, "The floor under memory per idle session").
Below Channels' ``AuthMiddlewareStack(URLRouter(websocket_urlpatterns))`` the endpoint works
as well, taking the user that middleware resolved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http.cookie import parse_cookie

from reactive.auth.identity import identity_from_user, session_identity
from reactive.functions.outcome import database_trouble
from reactive.functions.transaction import in_thread
from reactive.live.connection import CLOSE_NORMAL, Connection
from reactive.live.origin import header, origin, origin_allowed
from reactive.types import ANONYMOUS, Identity

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

# npm clients connect to ``<url>/api/<client version>/sync``, the Python client to
# ``/api/sync``; a doubled leading slash (a deployment URL ending in ``/``) is tolerated.
SYNC_PATH = r"^/*api/(?:[^/]+/)?sync$"
_sync_path = re.compile(SYNC_PATH)


class SyncEndpoint:
    """The ASGI application of sync-protocol websockets: accept, then read the client's frames
    until it or the server closes.

    Routed by ``SyncRouter`` it reads Django's session cookie itself (only when the handshake
    carries one); below Channels' ``AuthMiddlewareStack`` it takes the user resolved there.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"the sync endpoint serves websockets, not {scope['type']!r}")
        if (await receive())["type"] != "websocket.connect":
            return  # the client left during the handshake
        if not origin_allowed(scope):
            logger.warning("websocket origin refused origin=%s", origin(scope))
            await send({"type": "websocket.close", "code": CLOSE_NORMAL})  # HTTP 403
            return
        try:
            identity, session_key = await cookie_identity(scope)
        except Exception as exc:  # the session store (the database, usually) is down
            # Refused, not served as anonymous: the client retries, and a logged-in page
            # never shows what an anonymous user would see.
            logger.error("websocket refused: its session cookie could not be checked: %s",
                         database_trouble(exc) or f"{type(exc).__name__}: {exc}")
            await send({"type": "websocket.close", "code": CLOSE_NORMAL})  # HTTP 403
            return
        connection = Connection(scope.get("path", ""), send, identity, session_key)
        try:  # from here on, however it ends, the session and its timers end with it
            await send({"type": "websocket.accept"})
            connection.open()
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    await connection.receive(message.get("text"), message.get("bytes"))
                elif kind == "websocket.disconnect":
                    return
        finally:
            await connection.closed()


class SyncRouter:
    """A project's ``"websocket"`` application: the sync protocol's paths go to
    ``SyncEndpoint``, any other path to ``fallback`` (refused with HTTP 403 without one)."""

    def __init__(self, fallback: Application | None = None) -> None:
        self.endpoint = SyncEndpoint()
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _sync_path.match(scope.get("path", "")):
            await self.endpoint(scope, receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        else:
            logger.info("websocket refused: no route for path=%r", scope.get("path"))
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": CLOSE_NORMAL})


async def cookie_identity(scope: Scope) -> tuple[Identity, str | None]:
    """The identity of the handshake's Django session cookie, with the session's key when it
    gave a user (that session is then re-checked while the socket is open).

    Below Channels' ``AuthMiddlewareStack`` the user is in the scope already. Otherwise the
    cookie is read here by Django's own rules (``session_identity``: the session must exist
    and hold, its user be active), in a worker thread; a handshake without the cookie touches
    no database."""
    if "user" in scope:
        identity = identity_from_user(scope["user"])
        key = getattr(scope.get("session"), "session_key", None)
    else:
        cookies = header(scope, b"cookie")
        key = parse_cookie(cookies).get(settings.SESSION_COOKIE_NAME) if cookies else None
        identity = await in_thread(session_identity, key) if key else ANONYMOUS
    return identity, None if identity.is_anonymous else key
