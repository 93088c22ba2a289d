"""One open sync websocket: its session, its limits, and its frames out, in order.

``Connection`` takes the client's frames from ``reactive.live.endpoint`` and writes the
session's frames straight to the ASGI server's ``send``: in the caller's step when nothing is
queued for the socket (no task, queue or loop turn per socket per push), in a task of its own
only while a slow client's send waits. Client bugs get FatalError and a close; internal errors
close with 1011; a sender of oversized frames or floods is closed without hurting anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from channels.sessions import InstanceSessionWrapper

from reactive.conf import reactive_settings
from reactive.exceptions import AuthRejected, Overloaded, ProtocolError
from reactive.live import protocol
from reactive.live.session import ClientSession
from reactive.types import Identity

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013
MAX_OUTBOX = 10_000
# Transitions longer than this go to clients that accept it as TransitionChunks of this size
# (the reference server chunks above about 5 MB; a browser or proxy may cap a frame's size).
CHUNK_CHARS = 4 * 1024 * 1024


class Connection:
    """One open connection: its session, its limits and its outgoing frames.

    The session delivers frames with ``deliver_one``; ``receive`` takes the client's frames in
    arrival order; ``closed`` ends the session when the connection is gone.
    """

    # One of these per open socket: slots, and nothing that exists only while busy (the
    # outbox and the sender task) is allocated while idle.
    __slots__ = ("_budget", "_chunks", "_closing", "_ends", "_last_sent", "_outbox",
                 "_ping_interval", "_pinger", "_send", "_send_text", "_sender", "session")

    def __init__(self, path: str, send: Send, identity: Identity,
                 session_key: str | None) -> None:
        conf = reactive_settings()
        self._send = send
        self._send_text = _frame_sender(send)
        self._closing = False  # once closing, the client's later frames are dropped
        # Frames waiting to go out, and the task sending them: both exist only while there
        # is something to send, so an idle socket holds neither (see ``deliver_one``).
        self._outbox: deque[protocol.Outgoing | None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._ends: asyncio.Task[None] | None = None  # a close the server decided on
        self._last_sent = time.monotonic()
        self._budget = _Budget(conf.WEBSOCKET_MAX_MESSAGES_PER_SECOND)
        self._chunks = protocol.chunking_client(path)
        self.session = ClientSession(self.deliver_one, identity,
                                     conf.WEBSOCKET_MAX_PENDING_MUTATIONS,
                                     cookie_session=session_key, reject=self._reject)
        # A timer, not a task: no coroutine frame and no task per idle socket.
        self._ping_interval = conf.WEBSOCKET_PING_INTERVAL
        self._pinger = asyncio.get_running_loop().call_later(self._ping_interval, self._ping_due)

    def open(self) -> None:
        self.session.open()

    async def closed(self) -> None:
        """The connection is gone (or its coroutine cancelled): stop the session and the
        timers, and any send still waiting."""
        self.session.close()
        self._pinger.cancel()
        for task in (self._sender, self._ends):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def receive(self, text: str | None, data: bytes | None) -> None:
        if self._closing:
            return
        conf = reactive_settings()
        size = len(text.encode()) if text is not None else len(data or b"")
        if size > conf.WEBSOCKET_MAX_MESSAGE_BYTES:
            await self._fail(f"Message of {size} bytes is over the limit of "
                             f"{conf.WEBSOCKET_MAX_MESSAGE_BYTES}.", code=CLOSE_TOO_BIG)
            return
        if not self._budget.take():
            logger.warning("websocket flood closed session=%s", self.session.session_id)
            self._closing = True
            await self._close(CLOSE_TRY_LATER, "TooManyConcurrentRequests")
            return
        try:
            if text is None:
                raise ProtocolError("Messages must be text frames holding JSON.")
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                raise ProtocolError("The message is not valid JSON.") from None
            await self.session.handle(protocol.parse(parsed))
        except ProtocolError as exc:
            await self._fail(str(exc))
        except AuthRejected:
            await self._drain_and_close()
        except Overloaded as exc:
            logger.warning("websocket overloaded session=%s error=%s",
                           self.session.session_id, exc)
            await self._drain_and_close(CLOSE_TRY_LATER, "TooManyConcurrentRequests")
        except Exception:
            logger.exception("websocket message failed session=%s", self.session.session_id)
            await self._drain_and_close(CLOSE_INTERNAL, "InternalServerError")

    def _reject(self) -> None:
        """The session's identity ended on its own (a token expired): close after the
        AuthError, as the reference server does."""
        self._closing = True
        self._ends = asyncio.get_running_loop().create_task(self._drain_and_close())

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
                    await self._close(CLOSE_TRY_LATER, "ClientTooSlow")
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
                    self.session.session_id, message)
        self.deliver_one(protocol.fatal_error(message))
        await self._drain_and_close(code)

    async def _drain_and_close(self, code: int | None = None, reason: str = "") -> None:
        self._closing = True
        deadline = time.monotonic() + 2
        while self._sender is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self._close(code, reason)

    async def _close(self, code: int | None, reason: str = "") -> None:
        """Close from our side; the server answers with ``websocket.disconnect``, which ends
        the connection's coroutine (a close of a socket already gone is a no-op)."""
        try:
            await self._send({"type": "websocket.close", "code": code or CLOSE_NORMAL,
                              "reason": reason})
        except (OSError, RuntimeError) as exc:  # the client left first: nothing to close
            logger.debug("websocket close not sent session=%s error=%r",
                         self.session.session_id, exc)


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
