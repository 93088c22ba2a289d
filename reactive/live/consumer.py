"""The websocket edge of the sync protocol: frames in, frames out, in order, with limits.

It only moves frames: parsing is :mod:`reactive.live.protocol`'s, behaviour is the session's
(which deals with the Reactor itself). Client bugs get FatalError and a close; internal errors
close with 1011; a sender of oversized frames or floods is closed without hurting anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any
from urllib.parse import urlsplit

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper
from channels.utils import await_many_dispatch
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from reactive.auth.identity import identity_from_user
from reactive.conf import reactive_settings
from reactive.exceptions import AuthRejected, Overloaded, ProtocolError
from reactive.live import protocol
from reactive.live.session import ClientSession

logger = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013
MAX_OUTBOX = 10_000
# Transitions longer than this go to clients that accept it as TransitionChunks of this size
# (the reference server chunks above about 5 MB; a browser or proxy may cap a frame's size).
CHUNK_CHARS = 4 * 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


class SyncConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """``/api/<version>/sync`` and ``/api/sync``: one instance per websocket connection.

    It uses no channel layer, so it opens none: Channels' own ``__call__`` would open a layer
    receive per connection whenever ``CHANNEL_LAYERS`` is set, and a layer that times out its
    reads (channels-redis with redis-py's 5 s default) or cannot be reached would then close
    every idle session with 1011.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self._send_text = _frame_sender(send)
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive], self.dispatch)

    async def connect(self) -> None:
        if not origin_allowed(self.scope):
            logger.warning("websocket origin refused origin=%s", _origin(self.scope))
            await self.close()
            return
        await self.accept()
        self._closing = False  # once closing, the client's later frames are dropped
        conf = reactive_settings()
        # Frames waiting to go out, and the task sending them: both exist only while there
        # is something to send, so an idle socket holds neither (see ``deliver_one``).
        self._outbox: deque[protocol.Outgoing | None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._last_sent = time.monotonic()
        self._budget = _Budget(conf.WEBSOCKET_MAX_MESSAGES_PER_SECOND)
        self._chunks = protocol.chunking_client(self.scope.get("path", ""))
        self.session = ClientSession(
            self.deliver_one, identity_from_user(self.scope.get("user")),
            conf.WEBSOCKET_MAX_PENDING_MUTATIONS,
            cookie_session=getattr(self.scope.get("session"), "session_key", None),
            reject=self._reject,
        )
        loop = asyncio.get_running_loop()
        # A timer, not a task: one fewer coroutine frame and task per idle socket.
        self._ping_interval = conf.WEBSOCKET_PING_INTERVAL
        self._pinger = loop.call_later(self._ping_interval, self._ping_due)
        self.session.open()

    async def disconnect(self, code: int) -> None:
        session = getattr(self, "session", None)
        if session is None:
            return
        session.close()
        self._pinger.cancel()
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        conf = reactive_settings()
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > conf.WEBSOCKET_MAX_MESSAGE_BYTES:
            await self._fail(f"Message of {size} bytes is over the limit of "
                             f"{conf.WEBSOCKET_MAX_MESSAGE_BYTES}.", code=CLOSE_TOO_BIG)
            return
        if not self._budget.take():
            logger.warning("websocket flood closed session=%s", self.session.session_id)
            self._closing = True
            await self.close(code=CLOSE_TRY_LATER, reason="TooManyConcurrentRequests")
            return
        try:
            if text_data is None:
                raise ProtocolError("Messages must be text frames holding JSON.")
            try:
                data = json.loads(text_data)
            except (ValueError, RecursionError):
                raise ProtocolError("The message is not valid JSON.") from None
            await self.session.handle(protocol.parse(data))
        except ProtocolError as exc:
            await self._fail(str(exc))
        except AuthRejected:
            await self._drain_and_close()
        except Overloaded as exc:
            logger.warning("websocket overloaded session=%s error=%s",
                           self.session.session_id, exc)
            await self._drain_and_close(code=CLOSE_TRY_LATER, reason="TooManyConcurrentRequests")
        except Exception:
            logger.exception("websocket message failed session=%s", self.session.session_id)
            await self._drain_and_close(code=CLOSE_INTERNAL, reason="InternalServerError")

    def _reject(self) -> None:
        """The session's identity ended on its own (a token expired): close after the
        AuthError, as the reference server does."""
        self._closing = True
        task = asyncio.get_running_loop().create_task(self._drain_and_close())
        self._background = task  # keep a reference until it is done

    # -- outgoing --------------------------------------------------------------------------

    def deliver_one(self, message: protocol.Outgoing) -> None:
        """Send one frame (on the event loop); frames go out in the order delivered.

        With nothing queued the frame is sent at once, in the caller's step, without a task:
        an ASGI server's send returns without suspending unless the client is slow to read,
        and a round fanning one result out to a thousand sockets then costs no task, no
        queue and no loop turn per socket. A send that does suspend finishes in a task of
        its own, which also sends whatever is delivered meanwhile; other sockets never wait.
        """
        if self._sender is None and self._outbox is None:
            self._send_now(message)
            return
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        if len(outbox) >= MAX_OUTBOX:
            if outbox[-1] is not None:
                logger.warning("websocket outbox full; closing session=%s",
                               self.session.session_id)
                outbox.append(None)
            return
        outbox.append(message)

    def _send_now(self, message: protocol.Outgoing) -> None:
        step = self._send_frame(message)
        try:
            pending = step.send(None)
        except StopIteration:
            return
        except Exception as exc:  # the client went away: its disconnect ends the session
            self._closing = True
            logger.info("websocket send failed session=%s error=%r",
                        self.session.session_id, exc)
            return
        self._sender = asyncio.get_running_loop().create_task(self._send_rest(step, pending))

    async def _send_rest(self, step: Coroutine[Any, Any, None], pending: Any) -> None:
        """Finish a send that suspended, then send what was queued meanwhile, in order."""
        try:
            await _Resumed(step, pending)
            while self._outbox:
                message = self._outbox.popleft()
                if message is None:
                    self._closing = True
                    self._outbox.clear()
                    await self.close(code=CLOSE_TRY_LATER, reason="ClientTooSlow")
                    return
                await self._send_frame(message)
        finally:
            # No await between the emptiness check and here: a frame delivered later finds
            # no sender and goes out at once.
            self._sender = None
            if not self._outbox:
                self._outbox = None

    async def _send_frame(self, message: protocol.Outgoing) -> None:
        text = message if isinstance(message, str) else protocol.dumps(message)
        if (self._chunks and len(text) > CHUNK_CHARS
                and text.startswith('{"type":"Transition",')):
            # Nothing else may go out between the parts: one sender at a time per socket.
            for part in protocol.transition_chunks(text, CHUNK_CHARS):
                await self._send_text({"type": "websocket.send", "text": part})
        else:
            await self._send_text({"type": "websocket.send", "text": text})
        self._last_sent = time.monotonic()

    def _ping_due(self) -> None:
        """A Ping once the socket has been idle for the interval; checked again after the
        rest of the interval (at least half a second) either way."""
        idle = time.monotonic() - self._last_sent
        if idle >= self._ping_interval and self._sender is None:
            self.deliver_one(protocol.PING)
            idle = 0.0
        self._pinger = asyncio.get_running_loop().call_later(
            max(0.5, self._ping_interval - idle), self._ping_due)

    async def _fail(self, message: str, code: int | None = None) -> None:
        logger.info("websocket client error session=%s error=%s",
                    getattr(self.session, "session_id", None), message)
        self.deliver_one(protocol.fatal_error(message))
        await self._drain_and_close(code=code)

    async def _drain_and_close(self, code: int | None = None, reason: str | None = None) -> None:
        self._closing = True
        deadline = time.monotonic() + 2
        while self._sender is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.close(code=code, reason=reason)


class _Resumed:
    """Awaiting this finishes a coroutine already run up to its first suspension (``pending``
    is what it yielded there): the task awaiting it carries on where the caller's step
    stopped, as an eager task would (asyncio has those only from Python 3.12)."""

    __slots__ = ("pending", "step")

    def __init__(self, step: Coroutine[Any, Any, None], pending: Any) -> None:
        self.step, self.pending = step, pending

    def __await__(self) -> Generator[Any, Any, None]:
        step, value = self.step, self.pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                step.close()
                raise
            except BaseException as exc:  # CancelledError too: the coroutine decides
                try:
                    value = step.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = step.send(sent)
                except StopIteration:
                    return


class _Budget:
    """A token bucket: ``rate`` messages per second, bursts of up to 5 seconds' worth."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, rate * 5
        self.tokens, self.stamp = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _frame_sender(send: Any) -> Any:
    """The ASGI send to use for ``websocket.send`` frames: ``send`` itself, or, below
    Channels' ``SessionMiddleware`` (``AuthMiddlewareStack``), the send it wraps. That wrapper
    only acts on ``http.response.start`` (saving the session, setting its cookie), yet reads
    the lazy session on every frame: a quarter of a push's Python cost when one result fans
    out to many sockets. Accept, close and everything else still go through ``send``."""
    while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
        send = send.__self__.real_send
    return send


def origin_allowed(scope: dict[str, Any]) -> bool:
    """No Origin (Node, Python clients), the server's own origin, or a configured one.

    Origins are compared as (scheme, host, port), default ports filled in: a page served by
    another port or scheme of the same host is another origin. The server's own origin is the
    request's ``Host`` (an ``ALLOWED_HOSTS`` host) with ``http`` for ``ws`` and ``https`` for
    ``wss``.
    """
    origin = _origin(scope)
    if origin is None:
        return True
    key = origin_key(origin)
    if key is None:
        return False
    if key in {origin_key(o) for o in reactive_settings().WEBSOCKET_ALLOWED_ORIGINS}:
        return True
    return key == _own_origin(scope)


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) origin, lower-cased, the default port filled in;
    None for anything else (``null``, a path, another scheme)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    host = _header(scope, b"host")
    if host is None:
        return None
    domain, _ = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS) or ["localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin_key(f"{scheme}://{host}")


def _origin(scope: dict[str, Any]) -> str | None:
    return _header(scope, b"origin")


def _header(scope: dict[str, Any], wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None
