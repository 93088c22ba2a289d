"""A server process does (almost) nothing for commits its live queries cannot be affected by:
NOTIFY names the table written, and the Reactor skips the round and the log rows of tables no
read set involves. Runs its own server, so its Reactor counters see only this module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from reactive.functions.runtime import in_thread
from tests.support import servers
from tests.support.syncclient import SyncClient
from tests.testapp.models import Item, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ADMIN_KEY = "tests-admin-key-0123456789"  # tests.settings REACTIVE["ADMIN_KEY"]


@pytest.fixture(scope="module")
def server_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    with servers.serving(test_database_url, redis_url) as server:
        yield server.url


def stats(url: str) -> dict[str, int]:
    """The server's Reactor counters (admin-only query testapp/bench:reactor_stats)."""
    response = requests.post(f"{url}/api/run/testapp/bench/reactor_stats", json={"args": {}},
                             headers={"Authorization": f"Convex {ADMIN_KEY}"}, timeout=30)
    body = response.json()
    assert body["status"] == "success", body
    return {k: int(v) for k, v in body["value"].items()}


def write_items(count: int) -> None:
    for i in range(count):  # one commit, so one NOTIFY naming testapp_item, each
        Item.objects.create(name=f"skip-{i}", price=Decimal(1))


async def test_commits_to_a_table_no_query_reads_wake_no_round_and_are_not_read(
    server_url: str,
) -> None:
    async with SyncClient(server_url) as client:
        # Given a session whose only query reads the notes
        query = await client.subscribe("testapp:list_notes")
        await client.result(query)
        before = await asyncio.to_thread(stats, server_url)
        # When 20 commits write items, then one writes a note
        await in_thread(write_items, 20)
        await in_thread(Note.objects.create, body="interest:note")
        # Then the note is pushed (NOTIFY is delivered in commit order: every item's too)
        await client.result(query, lambda v: any(n["body"] == "interest:note" for n in v))
        after = await asyncio.to_thread(stats, server_url)
    assert after["notifies"] - before["notifies"] >= 21
    assert after["changes"] - before["changes"] == 1  # the note's row; no item row was read
    # the note's round, and at most one periodic round while this ran
    assert after["rounds"] - before["rounds"] <= 2
    assert after["skipped"] > before["skipped"]


async def test_a_query_on_a_table_whose_commits_were_skipped_sees_them_and_later_ones(
    server_url: str,
) -> None:
    async with SyncClient(server_url) as client:
        notes = await client.subscribe("testapp:list_notes")
        await client.result(notes)
        # Given item commits this server skipped
        await in_thread(write_items, 3)
        # When a query whose read set is "everything" subscribes, its first result has them
        count = await client.subscribe("testapp/bench:opaque_item_count")
        assert await client.result(count) == 3
        # ... and every later commit, to any table, reaches it
        await in_thread(write_items, 1)
        assert await client.result(count, lambda v: v == 4) == 4
        # When it is removed, item commits are skipped again while notes still flow
        await client.unsubscribe(count)
        await in_thread(write_items, 1)
        await in_thread(Note.objects.create, body="interest:after")
        await client.result(notes, lambda v: any(n["body"] == "interest:after" for n in v))
