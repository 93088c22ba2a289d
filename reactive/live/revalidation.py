"""Cookie-authenticated websockets re-checked against the database: a Django session logged
out, flushed, expired, or whose user was deactivated or changed password stops giving its
identity within ``WEBSOCKET_SESSION_RECHECK_SECONDS``."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from reactive.auth.identity import session_identity
from reactive.conf import reactive_settings
from reactive.functions.outcome import database_trouble
from reactive.functions.transaction import in_thread
from reactive.types import Identity

logger = logging.getLogger(__name__)


class CookieSession(Protocol):
    """What the watch needs of a session: told once when its cookie no longer holds."""

    def cookie_revoked(self) -> None: ...


class CookieWatch:
    """The cookie sessions of one event loop's websockets; one task re-checks them all, each
    distinct session key once per pass, in a worker thread (two indexed queries per key with
    the database session backend: the session row and the user)."""

    def __init__(self) -> None:
        self._sessions: dict[CookieSession, tuple[str, Identity]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, session: CookieSession, session_key: str, identity: Identity) -> None:
        self._sessions[session] = (session_key, identity)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cookie-watch")

    def unwatch(self, session: CookieSession) -> None:
        self._sessions.pop(session, None)

    async def _run(self) -> None:
        while self._sessions:
            await asyncio.sleep(reactive_settings().WEBSOCKET_SESSION_RECHECK_SECONDS)
            wanted = {key: identity for key, identity in self._sessions.values()}
            try:
                now = await in_thread(_identities, list(wanted))
            except Exception as exc:  # the database is down: nothing flows to anyone meanwhile
                # Nobody is logged out by an outage; each pass says so in one line, naming
                # the fix (a traceback only for what is not the database's).
                trouble = database_trouble(exc)
                logger.warning("cookie sessions not re-checked, kept as they were: %s",
                               trouble or f"{type(exc).__name__}: {exc}",
                               exc_info=trouble is None)
                continue
            revoked = {key for key, identity in wanted.items() if now.get(key) != identity}
            for session, (key, _) in list(self._sessions.items()):
                if key in revoked:
                    del self._sessions[session]
                    logger.info("websocket cookie session no longer valid; now anonymous")
                    session.cookie_revoked()


def _identities(keys: list[str]) -> dict[str, Identity]:
    return {key: session_identity(key) for key in keys}


_watches: dict[asyncio.AbstractEventLoop, CookieWatch] = {}


def cookie_watch() -> CookieWatch:
    """The running event loop's watch (one per server process)."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = CookieWatch()
    return watch

