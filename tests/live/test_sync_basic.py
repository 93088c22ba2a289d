"""The sync protocol end to end on a live server, with the protocol-level test client."""

from __future__ import annotations

import pytest

from reactive.functions.runtime import in_thread
from tests.support.syncclient import SyncClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_subscribe_mutate_and_see_the_update(live_server_url: str) -> None:
    async with SyncClient(live_server_url) as client:
        query = await client.subscribe("testapp:list_notes")
        assert await client.result(query) == []
        response = await client.mutation("testapp:add_note", {"body": "hello"})
        assert response["success"], response
        # read-your-writes: when the mutation resolved, the subscription already shows it
        assert [n["body"] for n in client.results[query]] == ["hello"]


async def test_writes_from_elsewhere_reach_subscribers(live_server_url: str) -> None:
    async with SyncClient(live_server_url) as client:
        query = await client.subscribe("testapp:list_notes")
        await client.result(query)
        await in_thread(Note.objects.create, body="from the ORM")
        notes = await client.result(query, lambda v: len(v) == 1)
        assert notes[0]["body"] == "from the ORM"
