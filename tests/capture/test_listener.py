"""The LISTEN connection: payloads reach the callback, and a killed connection is reported
(``on_lost``) and replaced, after which notifications flow again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest

from reactive.capture.listener import Listener
from tests.support.changelog import dsn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CHANNEL = "reactive_listener_test"


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def notify(payload: str) -> None:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def kill_listener() -> int:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE query = %s", (f'LISTEN "{CHANNEL}"',)).fetchall()
    return len(rows)


async def test_payloads_arrive_and_a_killed_connection_is_replaced() -> None:
    heard: list[str] = []
    lost: list[bool] = []
    listener = Listener(CHANNEL, heard.append, lambda: lost.append(True))
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        # Payloads arrive in order, several per read included
        await asyncio.to_thread(notify, "testapp_note")
        for i in range(20):
            await asyncio.to_thread(notify, f"t{i}")
        await until(lambda: len(heard) == 21, "21 notifications")
        assert heard == ["testapp_note", *(f"t{i}" for i in range(20))]
        # When the server ends the connection, the owner is told and it reconnects
        assert await asyncio.to_thread(kill_listener) == 1
        await until(lambda: bool(lost), "on_lost")
        await until(listener.connected.is_set, "the new connection")
        await asyncio.to_thread(notify, "after")
        await until(lambda: heard[-1:] == ["after"], "a notification after reconnecting")
    finally:
        await listener.stop()
