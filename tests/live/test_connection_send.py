"""The consumer's send path. A client that stops reading: the other sessions keep receiving,
and the slow one gets every Transition, in order, once it reads again (frames that could not
go out at once finish in a task of their own, and later frames queue behind them). Frames skip
SessionMiddleware's send wrapper, and only that."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.sessions import InstanceSessionWrapper

from reactive.functions.transaction import in_thread
from reactive.live.connection import _frame_sender
from tests.support.syncclient import SyncClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SIZE = 2 * 1024 * 1024  # per result; a few of them outgrow the socket buffers
WRITES = 12


async def test_a_client_that_stops_reading_delays_nobody_and_misses_nothing(
    live_server_url: str,
) -> None:
    prefix = f"slow-{uuid.uuid4().hex[:8]}:"
    # No compression: the blob would deflate to almost nothing and never fill a buffer.
    slow_client = SyncClient(live_server_url, max_queue=1, compression=None)
    async with slow_client as slow, SyncClient(live_server_url) as fast:
        big = await slow.subscribe("testapp/clients:sized", {"size": SIZE, "prefix": prefix})
        assert (await slow.result(big))["bodies"] == []
        small = await fast.subscribe("testapp/clients:sized", {"size": 0, "prefix": prefix})
        await fast.result(small)
        # ``slow`` reads nothing from here on while the server pushes ~24 MiB at it.
        for n in range(WRITES):
            await in_thread(Note.objects.create, body=f"{prefix}{n}")
            await asyncio.sleep(0.1)  # separate commits, mostly separate rounds
        bodies = [f"{prefix}{n}" for n in range(WRITES)]
        # The fast session saw the last write while the slow one was still not reading.
        seen = await fast.result(small, lambda v: v["bodies"] == bodies, timeout=30)
        assert seen["blob"] == ""
        # The slow one now reads: every Transition chains onto the one before (SyncClient
        # checks startVersion against its version) and the last shows every write.
        value = await slow.result(big, lambda v: v["bodies"] == bodies, timeout=60)
        assert len(value["blob"]) == SIZE
        assert not slow.other or all(m.get("type") == "Ping" for m in slow.other)


async def _asgi_send(message: dict[str, object]) -> None:
    """An ASGI send (never called here)."""


def test_frames_bypass_only_the_session_middlewares_send_wrapper() -> None:
    # AuthMiddlewareStack hands the consumer SessionMiddleware's send, which acts on HTTP
    # responses only; frames go to the send it wraps, anything else is left as it is.
    wrapper = InstanceSessionWrapper({"cookies": {}}, _asgi_send)
    outer = InstanceSessionWrapper({"cookies": {}}, wrapper.send)
    assert _frame_sender(outer.send) is _asgi_send
    assert _frame_sender(_asgi_send) is _asgi_send
