"""LISTEN on the change-log channel with psycopg's async connection, reconnecting forever.

Each notification's payload (the table a commit wrote, migration 0008; empty from older
triggers) goes to ``on_notify``. A lost connection may have dropped notifications, so the owner
is told (``on_lost``) and re-checks everything; the change log itself never loses a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10


class Listener:
    """Calls ``on_notify(payload)`` for every NOTIFY on ``channel`` (on the event loop)."""

    def __init__(self, channel: str, on_notify: Callable[[str], None],
                 on_lost: Callable[[], None], using: str = "default") -> None:
        self.channel = channel
        self.on_notify = on_notify
        self.on_lost = on_lost
        self.using = using
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo(self.using), autocommit=True, connect_timeout=CONNECT_TIMEOUT
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.connected.set()
                    delay = 0.1
                    logger.info("listening channel=%s", self.channel)
                    await self._receive(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("listen connection lost channel=%s error=%s", self.channel, exc)
            self.connected.clear()
            self.on_lost()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Hand each notification to ``on_notify`` until the connection fails.

        Reads libpq directly when the socket is readable: psycopg's ``notifies()`` costs a
        few hundred microseconds per notification (a lock, a waiter, a reader registered and
        removed each time), paid by every server process for every commit. Nothing else
        uses this connection after LISTEN.
        """
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()
        pgconn = conn.pgconn

        def readable() -> None:
            payloads = []
            try:
                pgconn.consume_input()
                while (notify := pgconn.notifies()) is not None:
                    payloads.append(notify.extra.decode())
                if pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the LISTEN connection is no longer OK")
            except Exception as exc:  # the connection is gone: reconnect
                if not failed.done():
                    failed.set_exception(exc)
            for payload in payloads:
                self.on_notify(payload)

        fd = pgconn.socket
        loop.add_reader(fd, readable)
        try:
            readable()  # anything that arrived with LISTEN's reply
            await failed
        finally:
            loop.remove_reader(fd)


def conninfo(using: str = "default") -> str:
    """A libpq connection string for a Django database alias."""
    params = connections[using].get_connection_params()
    keys = ("dbname", "user", "password", "host", "port", "sslmode", "options")
    return psycopg.conninfo.make_conninfo(
        **{k: str(v) for k, v in params.items() if k in keys and v not in (None, "")}
    )
