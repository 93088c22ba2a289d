"""The official npm client (``ConvexClient`` from ``convex/browser``, Node) against live servers:
subscriptions, read-your-writes, errors, one-shot queries, reactive pagination, and reconnects
after the server process is killed and restarted."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from reactive.models import SessionRequest
from tests.conftest import JS_DIR, NodeClient
from tests.support import servers
from tests.support.clientproc import ClientProcess
from tests.support.waiting import wait_for
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def test_npm_mutation_resolves_with_its_write_already_in_the_subscription(
    live_server_url: str, node_client: NodeClient
) -> None:
    # Given two npm clients subscribed to the notes
    bodies = ["first", "second", "third"]
    burst = [f"burst {i}" for i in range(6)]
    # When one of them runs mutations, one by one and then in a burst
    seen = node_client.run("sync_client.mjs", live_server_url,
                           {"scenario": "readYourWrites", "bodies": bodies, "burst": burst})
    # Then each mutation promise resolved only once onUpdate had delivered its write (G4)
    assert seen["initial"] == []
    for record in seen["sequential"] + seen["burst"]:
        assert record["id"] in record["seen"], record
    # ... the sequential ones in order, each seeing exactly the writes before it
    for i, record in enumerate(seen["sequential"]):
        assert record["seen"] == [r["id"] for r in seen["sequential"][: i + 1]]
    # ... and both clients converge on every write, the other client's included
    expected = [*bodies, *burst, "from the other"]
    assert sorted(seen["final"]) == sorted(expected)
    assert sorted(seen["otherFinal"]) == sorted(expected)
    assert Note.objects.count() == len(expected)


def test_npm_errors_reach_the_client_as_convex_presents_them(
    live_server_url: str, node_client: NodeClient
) -> None:
    out = node_client.run("sync_client.mjs", live_server_url, {"scenario": "errors"})
    # A FunctionError is a ConvexError with its data
    assert out["convexError"]["convexError"] is True
    assert out["convexError"]["data"] == {"code": "EMPTY", "field": "body"}
    assert out["convexError"]["message"].startswith("[CONVEX M(testapp:add_note)]")
    assert out["actionError"]["data"] == {"code": "NOPE"}
    # Internal functions are refused like unknown ones, as plain errors
    for key in ("internalMutation", "internalQuery", "unknown"):
        assert out[key]["ok"] is False and out[key]["convexError"] is False, out[key]
        assert "Could not find public function" in out[key]["message"], out[key]
    assert "Could not find public function" in out["internalSubscription"]["message"]
    assert not out["internalSubscription"]["convexError"]
    assert out["badArgs"]["ok"] is False and "body" in out["badArgs"]["message"]
    assert out["crash"]["ok"] is False and "Server Error" in out["crash"]["message"]
    # A bad cursor is the InvalidCursor ConvexError usePaginatedQuery resets on
    assert out["badCursor"]["data"] == {"isConvexSystemError": True,
                                        "paginationError": "InvalidCursor"}
    # Nothing was written by the failures; the connection still works afterwards
    assert out["after"]["seen"] == [out["after"]["id"]]
    assert list(Note.objects.values_list("body", flat=True)) == ["after the errors"]


def test_npm_one_shot_queries_and_encoded_values(
    live_server_url: str, node_client: NodeClient
) -> None:
    Note.objects.create(body="existing")
    big = {"$integer": base64.b64encode((2**60).to_bytes(8, "little")).decode()}
    echo = {"n": big, "b": {"$bytes": "AQID"},
            "f": {"$float": "AAAAAAAA+H8="}, "list": [1.5, "x", None, True]}
    out = node_client.run("sync_client.mjs", live_server_url,
                          {"scenario": "oneShot", "echo": echo})
    assert [n["body"] for n in out["notes"]["value"]] == ["existing"]
    assert out["bigInt"]["value"] == big
    assert out["bigIntType"] == "bigint"
    assert out["floats"]["value"][-1] == 1.5
    assert out["echo"]["value"] == echo
    assert out["nested"]["value"] == "hello npm"
    assert out["action"]["ok"] and out["action"]["value"]["count"] == 1
    assert out["trailingSlash"]["value"] == "hello slash"



def _bodies(*numbers: int) -> list[str]:
    return [f"p:{n}" for n in numbers]


def test_npm_paginated_pages_stay_gapless_grow_and_split(
    live_server_url: str, node_client: NodeClient
) -> None:
    # Given eight notes p:10..p:80, paginated by body three at a time
    for n in range(10, 90, 10):
        Note.objects.create(body=f"p:{n}")
    Note.objects.create(body="other")  # not in the query
    steps = [{"load": 3}, {"add": "p:15"}, {"remove": "p:30"},
             {"add": "p:11"}, {"add": "p:12"}, {"add": "p:13"}, {"add": "p:14"},
             {"split": 3}, {"load": 3}, {"add": "p:90"}]
    # When the npm client loads two pages, then rows come and go inside page 1's range
    out = node_client.run("paginate.mjs", live_server_url,
                          {"prefix": "p:", "initialNumItems": 3, "steps": steps})
    assert out["error"] is None and out.get("failure") is None, out
    first_page, two_pages, grown, shrunk, _, _, _, big, split, exhausted, last = out["trace"]

    # Then: first page, then loadMore
    assert first_page["bodies"] == _bodies(10, 20, 30)
    assert two_pages["bodies"] == _bodies(10, 20, 30, 40, 50, 60)
    # ... an insert inside page 1 grows page 1 (its end stays pinned at p:30): nothing is lost
    # between the pages, nothing shows twice, and the mutation resolved with it visible
    assert grown["bodies"] == _bodies(10, 15, 20, 30, 40, 50, 60)
    assert [p["rows"] for p in grown["pages"]] == [_bodies(10, 15, 20, 30), _bodies(40, 50, 60)]
    # ... deleting the row that ended page 1 shrinks it; page 2 still starts after it
    assert shrunk["bodies"] == _bodies(10, 15, 20, 40, 50, 60)
    # ... a page grown past twice its size recommends a split, and the client splits it
    assert big["pages"][0]["rows"] == _bodies(10, 11, 12, 13, 14, 15, 20)
    assert big["pages"][0]["pageStatus"] == "SplitRecommended"
    first, second, third = split["pages"]
    assert first["rows"] == _bodies(10, 11, 12) and second["rows"] == _bodies(13, 14, 15, 20)
    assert first["opts"]["cursor"] is None
    assert first["opts"]["endCursor"] == second["opts"]["cursor"]
    assert second["opts"]["endCursor"] == third["opts"]["cursor"]  # page 1's pinned end
    assert split["bodies"] == _bodies(10, 11, 12, 13, 14, 15, 20, 40, 50, 60)
    # ... loading the rest exhausts the query; the last page takes in rows appended later
    assert exhausted["status"] == "Exhausted"
    assert last["bodies"] == _bodies(10, 11, 12, 13, 14, 15, 20, 40, 50, 60, 70, 80, 90)
    assert last["pages"][-1]["rows"] == _bodies(70, 80, 90)
    for t in out["trace"]:  # every view in order, without duplicates
        assert t["bodies"] == sorted(set(t["bodies"])), t


# -- reconnects: the server process is SIGKILLed and restarted on the same port ---------------




def in_flight_insert(body: str) -> bool:
    """A transaction that inserted the note ``body`` is open, not committed (pg_stat_activity)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                       " AND query LIKE %s AND query LIKE %s",
                       ['%INSERT INTO "testapp_note"%', f"%{body}%"])
        return bool(cursor.fetchone()[0])


@pytest.fixture
def restartable_server(test_database_url: str, redis_url: str) -> Iterator[servers.AsgiServer]:
    """A server of this test's own, to kill and restart on the same port."""
    server = servers.AsgiServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_url})
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(120)
def test_npm_client_survives_server_kills_without_applying_a_mutation_twice(
    restartable_server: servers.AsgiServer, node: str
) -> None:
    server = restartable_server
    for body in ("r:10", "r:20", "r:30", "r:40"):
        Note.objects.create(body=body)
    payload = {"prefix": "r:", "seconds": 2, "slowSeconds": 2}
    client = ClientProcess([node, "reconnect.mjs"], cwd=JS_DIR,
                           env={"SERVER_URL": server.url, "PAYLOAD": json.dumps(payload)})
    try:
        ready = client.event("ready")
        assert ready["paginated"] == ["r:10", "r:15", "r:20", "r:30", "r:40"]
        assert ready["connectionCount"] == 1

        # A. Given a mutation running (inserted, not committed) when the server is SIGKILLed
        client.send("A")
        client.event("sentA")
        wait_for(
            lambda: in_flight_insert("r:slow"),
            what="slow_add_note to be in flight", interval=0.02,
        )
        server.kill()
        assert not Note.objects.filter(body="r:slow").exists()
        # When a server comes back on the same port
        server.start()
        # Then the client reconnects, re-sends the mutation, and it commits exactly once
        resolved = client.event("resolvedA", timeout=40)
        assert list(Note.objects.filter(body="r:slow").values_list("pk", flat=True)) == [
            int(resolved["id"])]
        assert resolved["connectionCount"] == 2
        # ... the subscriptions recovered, showing the write when the promise resolved (G4)
        assert "r:slow" in resolved["bodies"]
        # ... and page 1 kept its grown size through its journal: no gap, no duplicate
        assert resolved["paginated"] == ["r:10", "r:15", "r:20", "r:30", "r:40", "r:slow"]

        # B. Given a mutation committed on a server killed before it could answer
        client.send("B")
        client.event("sentB")
        wait_for(
            lambda: Note.objects.filter(body="r:commit").exists(),
            what="add_note to commit", interval=0.02,
        )
        server.kill()
        assert not any(e["event"] == "resolvedB" for e in client.pending()), (
            "the mutation was answered before the kill")
        server.start()
        # Then the re-sent mutation (same session id and request id) is not run again: the
        # client gets the stored result
        resolved = client.event("resolvedB", timeout=40)
        rows = list(Note.objects.filter(body="r:commit").values_list("pk", flat=True))
        assert rows == [int(resolved["id"])]
        assert resolved["connectionCount"] == 3
        assert "r:commit" in resolved["bodies"] and resolved["slowCount"] == 1
        requests = SessionRequest.objects.filter(session_id=ready["sessionId"])
        assert requests.count() == 3  # r:15, r:slow, r:commit: one row each

        done = client.event("done", timeout=30)
        assert done["bodies"] == ["r:10", "r:20", "r:30", "r:40", "r:15", "r:slow", "r:commit",
                                  "r:after"]
        assert Note.objects.filter(body__startswith="r:").count() == 8
    finally:
        client.close()


def _local_ports(pid: int) -> list[int]:
    """The local TCP ports of process ``pid``'s sockets (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def reactor_connection(server: servers.AsgiServer) -> int | None:
    """The backend pid of the server's Reactor connection: its one database connection that is
    not the LISTEN one while no request is running."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s) "
                       "AND query NOT LIKE 'LISTEN%%'", [_local_ports(server.pid)])
        rows = cursor.fetchall()
    return rows[0][0] if len(rows) == 1 else None


def test_npm_requests_survive_the_reactor_losing_its_database_connection(
    restartable_server: servers.AsgiServer, node: str
) -> None:
    # Given a client subscribed on a server, and the server's Reactor connection killed
    # (as a Postgres restart or an idle-connection timeout would)
    client = ClientProcess([node, "recover.mjs"], cwd=JS_DIR, env={
        "SERVER_URL": restartable_server.url, "PAYLOAD": json.dumps({"prefix": "d:"})})
    try:
        client.event("ready")
        backend = wait_for(
            lambda: reactor_connection(restartable_server),
            what="the Reactor connection", interval=0.02,
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        # When the client subscribes to a new query and runs a mutation, the first round to
        # take them in fails on the dead connection
        client.send("go")
        # Then neither request is lost: the next round answers both
        done = client.event("done", timeout=30)
        assert done["second"] == done["first"] == ["d:x1"]
        assert Note.objects.get(body="d:x1").pk == int(done["id"])
    finally:
        client.close()
