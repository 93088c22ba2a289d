"""G8, bad input never hurts others: each offence gets the offender a clear error or a close of
its own socket, while a well-behaved client connected at the same time (the Bystander,
subscribed first) keeps receiving correct updates through it all."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websockets

from reactive import values
from reactive.live.origin import origin_key
from tests.support.servers import serving
from tests.support.syncclient import Bystander, SyncClient
from tests.support.waiting import database_quiet, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# tests/settings_limits.py
MAX_BYTES = 64 * 1024
MAX_QUERIES = 500
BURST = 200  # WEBSOCKET_MAX_MESSAGES_PER_SECOND 40, bursts of five seconds' worth

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013


@pytest.fixture(scope="module")
def limited_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    """A second server process with small websocket limits (tests/settings_limits.py)."""
    with serving(test_database_url, redis_url,
                 DJANGO_SETTINGS_MODULE="tests.settings_limits") as server:
        yield server.url


def add(query_id: int, path: str, args: Any = None) -> dict[str, Any]:
    wrapped = args if isinstance(args, list) else [values.encode(args or {})]
    return {"type": "Add", "queryId": query_id, "udfPath": path, "args": wrapped}


def modify(base: int, new: int, *modifications: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ModifyQuerySet", "baseVersion": base, "newVersion": new,
            "modifications": list(modifications)}


async def expect_fatal(client: SyncClient, pattern: str) -> tuple[int | None, str]:
    """The server answers with one FatalError matching ``pattern``, then closes (not 1011)."""
    code, reason = await client.closed()
    fatal = [m for m in client.other if m["type"] == "FatalError"]
    assert len(fatal) == 1, client.other
    assert re.search(pattern, fatal[0]["error"]), fatal[0]["error"]
    assert code != 1011, (code, reason)
    return code, reason


CONNECT = {"type": "Connect", "sessionId": "9f0e1c1e-0000-4000-8000-000000000000",
           "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}

# (test id, frames sent after Connect, FatalError pattern)
PROTOCOL_ERRORS: list[tuple[str, list[Any], str]] = [
    ("malformed JSON", ['{"type": "ModifyQuerySet", "baseVersion": 0,'], "not valid JSON"),
    ("deeply nested JSON", ["[" * 100_000 + "]" * 100_000], "not valid JSON|JSON object"),
    ("not an object", ["[1, 2, 3]"], "JSON object with a string 'type'"),
    ("no type", [{"baseVersion": 0}], "JSON object with a string 'type'"),
    ("binary frame", [b'{"type": "Event", "eventType": "x", "event": {}}'], "text frames"),
    ("unknown message type", [{"type": "Subscribe", "queryId": 1}],
     r"^Invalid Subscribe message: Input tag 'Subscribe'"),
    ("missing newVersion", [{"type": "ModifyQuerySet", "baseVersion": 0,
                             "modifications": []}], "newVersion"),
    ("missing udfPath", [{"type": "Mutation", "requestId": 0, "args": [{}]}], "udfPath"),
    ("missing queryId", [modify(0, 1, {"type": "Add", "udfPath": "testapp:list_notes",
                                       "args": [{}]})], "queryId"),
    ("wrong type: baseVersion", [{"type": "ModifyQuerySet", "baseVersion": "zero",
                                  "newVersion": 1, "modifications": []}], "baseVersion"),
    ("wrong type: numeric string", [{"type": "ModifyQuerySet", "baseVersion": "0",
                                     "newVersion": 1, "modifications": []}], "baseVersion"),
    ("wrong type: boolean requestId", [{"type": "Mutation", "requestId": True,
                                        "udfPath": "testapp:add_note", "args": [{}]}],
     "requestId"),
    ("wrong type: fractional queryId", [modify(0, 1, add(0, "testapp:echo") | {"queryId": 0.5})],
     "queryId"),
    ("wrong type: modifications", [{"type": "ModifyQuerySet", "baseVersion": 0,
                                    "newVersion": 1, "modifications": {"Add": 1}}],
     "modifications"),
    ("wrong type: args", [modify(0, 1, {"type": "Add", "queryId": 0,
                                        "udfPath": "testapp:list_notes", "args": "{}"})],
     "args"),
    ("negative queryId", [modify(0, 1, add(-1, "testapp:list_notes"))], "queryId"),
    ("unknown modification", [modify(0, 1, {"type": "Replace", "queryId": 0})], "Replace"),
    ("wrong type: requestId", [{"type": "Action", "requestId": "first",
                                "udfPath": "testapp:echo", "args": [{}]}], "requestId"),
    ("unknown tokenType", [{"type": "Authenticate", "baseVersion": 0,
                            "tokenType": "Password", "value": "x"}], "tokenType"),
    ("Connect twice", [CONNECT], "Connect was sent twice"),
    ("BaseVersionMismatch", [modify(1, 2, add(0, "testapp:list_notes"))],
     "^BaseVersionMismatch"),
    ("BaseVersionMismatch after a change", [modify(0, 1, add(0, "testapp:list_notes")),
                                            modify(0, 2, add(1, "testapp:list_notes"))],
     "^BaseVersionMismatch"),
    ("newVersion equals base", [modify(0, 0)], "newVersion must be greater"),
    ("newVersion below base", [modify(0, 1), modify(1, 0)], "newVersion must be greater"),
    ("duplicate Add in one message", [modify(0, 1, add(3, "testapp:list_notes"),
                                             add(3, "testapp:echo"))], "added twice"),
    ("duplicate Add later", [modify(0, 1, add(3, "testapp:list_notes")),
                             modify(1, 2, add(3, "testapp:list_notes"))], "added twice"),
    ("Remove of unknown queryId", [modify(0, 1, {"type": "Remove", "queryId": 9})],
     "never added"),
    ("Remove twice", [modify(0, 1, add(0, "testapp:echo")),
                      modify(1, 2, {"type": "Remove", "queryId": 0}),
                      modify(2, 3, {"type": "Remove", "queryId": 0})], "never added"),
    ("Authenticate wrong baseVersion", [{"type": "Authenticate", "baseVersion": 1,
                                         "tokenType": "None"}], "baseVersion"),
]


@pytest.mark.parametrize(("frames", "pattern"), [case[1:] for case in PROTOCOL_ERRORS],
                         ids=[case[0] for case in PROTOCOL_ERRORS])
async def test_protocol_error_gets_fatal_error_and_close_others_unharmed(
    live_server_url: str, frames: list[Any], pattern: str
) -> None:
    # Given a subscribed bystander, when a client breaks the protocol
    async with Bystander(live_server_url), SyncClient(live_server_url) as offender:
        for frame in frames:
            await offender.send_raw(frame if isinstance(frame, str | bytes)
                                    else json.dumps(frame))
        # Then it gets a FatalError naming the problem, and its socket is closed
        await expect_fatal(offender, pattern)


@pytest.mark.parametrize("first", [modify(0, 1, add(0, "testapp:list_notes")),
                                   {"type": "Mutation", "requestId": 0,
                                    "udfPath": "testapp:add_note", "args": [{"body": "x"}]},
                                   {"type": "Connect", "connectionCount": 0}],
                         ids=["ModifyQuerySet", "Mutation", "Connect without sessionId"])
async def test_connect_must_come_first_and_be_whole(live_server_url: str,
                                                    first: dict[str, Any]) -> None:
    async with Bystander(live_server_url), SyncClient(live_server_url,
                                                      connect=False) as offender:
        await offender.send(first)
        await expect_fatal(offender, "first message must be Connect|sessionId")


async def test_events_are_ignored_even_unknown_ones(live_server_url: str) -> None:
    async with Bystander(live_server_url), SyncClient(live_server_url) as client:
        await client.send({"type": "Event", "eventType": "SomethingNew", "event": {"a": 1}})
        await client.send({"type": "Event"})
        query = await client.subscribe("testapp:echo", {"value": "still here"})
        assert await client.result(query) == "still here"
        assert client.other == []


@pytest.mark.parametrize("token", [
    {"tokenType": "Admin", "value": "not-the-admin-key-0123456789"},
    {"tokenType": "User", "value": "not.a.jwt"},
    {"tokenType": "User"},
], ids=["bad admin key", "garbage JWT", "no token"])
async def test_bad_credentials_get_auth_error_then_close(live_server_url: str,
                                                         token: dict[str, Any]) -> None:
    async with Bystander(live_server_url), SyncClient(live_server_url) as offender:
        query = await offender.subscribe("testapp:whoami")
        await offender.result(query)
        await offender.send({"type": "Authenticate", "baseVersion": 0, **token})
        code, _ = await offender.closed()
        errors = [m for m in offender.other if m["type"] == "AuthError"]
        assert len(errors) == 1, offender.other
        assert errors[0]["baseVersion"] == 0
        assert errors[0]["authUpdateAttempted"] is True
        assert errors[0]["error"]
        assert code in (CLOSE_NORMAL, None), code
        assert not [m for m in offender.other if m["type"] == "FatalError"]


async def test_bad_queries_fail_alone_and_the_socket_stays_open(live_server_url: str) -> None:
    async with Bystander(live_server_url) as bystander, SyncClient(live_server_url) as client:
        # Given a good subscription on the offending socket
        good = await client.subscribe("testapp:list_notes")
        await client.result(good)
        # When it adds queries that cannot run
        bad = {
            10: ("testapp:nope", {}, r"Could not find public function for 'testapp:nope'"),
            11: ("testapp:secret", {}, r"Could not find public function for 'testapp:secret'"),
            12: ("testapp:list_notes", {"limit": "many"}, r"limit"),
            13: ("testapp:list_notes", {"colour": "red"}, r"colour"),
            14: ("testapp:add_note", {"body": "x"}, r"is a mutation, not a query"),
            15: ("testapp:list_notes", [1], r"must hold an object"),
            16: ("testapp:list_notes", [{}, {}], r"at most one object"),
            17: ("testapp:list_notes", [{"limit": {"$integer": "??"}}], r"limit|integer"),
            18: ("testapp:crash", {}, r"Uncaught ValueError: boom"),
            19: ("testapp:write_in_query", {}, r"."),
            20: ("testapp:bad_return", {}, r"."),
            21: ("testapp:list_notes", {"limit": -1}, r"."),
            22: ("testapp:list_notes", {"limit": 1e30}, r"."),  # a database error
        }
        await client.modify([add(qid, path, args) for qid, (path, args, _) in bad.items()])
        await client.wait_for(lambda: bad.keys() <= client.errors.keys())
        # Then each fails with its own clear error, and nothing else happened
        for qid, (_, _, pattern) in bad.items():
            assert re.search(pattern, client.errors[qid]["errorMessage"]), client.errors[qid]
            assert client.errors[qid]["logLines"] == []
        assert good in client.results and client.other == []
        # and the socket keeps working: the good query still updates, a mutation resolves
        response = await client.mutation("testapp:add_note", {"body": "after the bad ones"})
        assert response["success"], response
        assert "after the bad ones" in [n["body"] for n in client.results[good]]
        await bystander.sees_a_new_write()
        # and the failed ones can be removed like any other
        await client.modify([{"type": "Remove", "queryId": qid} for qid in bad])
        await client.wait_for(lambda: not client.errors)


@pytest.mark.parametrize("kind", ["Mutation", "Action"])
async def test_bad_function_calls_fail_alone(live_server_url: str, kind: str) -> None:
    response_type = f"{kind}Response"
    good = ("testapp:add_note", {"body": "good"}) if kind == "Mutation" else (
        "testapp:sync_summarize", {})
    bad: list[tuple[str, Any, str]] = [
        ("testapp:nope", {}, r"Could not find public function for 'testapp:nope'"),
        ("testapp:internal_add", {"body": "x"},
         r"Could not find public function for 'testapp:internal_add'"),
        ("testapp:add_note" if kind == "Mutation" else "testapp:fail_action", {"body": 3},
         r"body|code"),
        (good[0], {"unexpected": 1}, r"unexpected"),
        (good[0], [1], r"must hold an object"),
        (good[0], [{"body": {"$bytes": "!!"}}], r"body|bytes|base64"),
        ("testapp:list_notes", {}, r"is a query, not a"),
    ]
    async with Bystander(live_server_url) as bystander, SyncClient(live_server_url) as client:
        notes = await client.subscribe("testapp:list_notes")
        await client.result(notes)
        request_ids = []
        for path, args, _ in bad:
            wrapped = args if isinstance(args, list) else [values.encode(args)]
            request_ids.append(client._next_request)
            client._next_request += 1
            await client.send({"type": kind, "requestId": request_ids[-1], "udfPath": path,
                               "args": wrapped})
        await client.wait_for(lambda: all(r in client.responses for r in request_ids))
        for request_id, (_, _, pattern) in zip(request_ids, bad, strict=True):
            response = client.responses[request_id]
            assert response["type"] == response_type
            assert response["success"] is False, response
            assert re.search(pattern, response["result"]), response
            assert response["logLines"] == []
            assert "ts" not in response or response["ts"] is None
        # The socket still works for good calls, and nothing was written by the bad ones.
        ok = await (client.mutation(*good) if kind == "Mutation" else client.action(*good))
        assert ok["success"], ok
        await bystander.sees_a_new_write()
        bodies = [n["body"] for n in await client.result(
            notes, lambda v: any(n["body"] != "good" for n in v))]
        assert "x" not in bodies
        assert client.other == []


async def test_oversized_frame_closes_with_1009(limited_url: str) -> None:
    async with Bystander(limited_url) as bystander:
        # A frame just under the limit is fine.
        async with SyncClient(limited_url) as client:
            filler = "y" * (MAX_BYTES - 200)
            query = await client.subscribe("testapp:echo", {"value": filler})
            assert await client.result(query) == filler
        for frame in (json.dumps({"type": "Event", "event": "x" * MAX_BYTES}),
                      b"\0" * (MAX_BYTES + 1)):
            async with SyncClient(limited_url) as offender:
                await offender.send_raw(frame)
                code, _ = await expect_fatal(offender, f"over the limit of {MAX_BYTES}")
                assert code == CLOSE_TOO_BIG
            await bystander.sees_a_new_write()


async def test_subscriptions_past_the_limit_fail_clearly_the_rest_keep_working(
    limited_url: str,
) -> None:
    total = 3000
    live = list(range(10))  # list_notes with distinct limits: re-run on each write
    async with Bystander(limited_url) as bystander, SyncClient(limited_url) as client:
        # When one socket asks for thousands of queries, in frames under the size limit
        adds = [add(qid, "testapp:list_notes", {"limit": 100 + qid}) if qid in live
                else add(qid, "testapp:echo", {"value": qid}) for qid in range(total)]
        for start in range(0, total, 500):
            await client.modify(adds[start:start + 500])
        await client.wait_for(lambda: len(client.results) + len(client.errors) == total, 30)
        # Then the first MAX_QUERIES work and every later one fails with a clear message
        assert sorted(client.results) == list(range(MAX_QUERIES))
        assert sorted(client.errors) == list(range(MAX_QUERIES, total))
        message = client.errors[total - 1]["errorMessage"]
        assert "Too many subscriptions on this connection" in message
        assert str(MAX_QUERIES) in message
        assert all(client.results[qid] == qid for qid in range(len(live), MAX_QUERIES))
        # and the accepted ones keep updating
        response = await client.mutation("testapp:add_note", {"body": "over the limit"})
        assert response["success"], response
        for qid in live:
            assert "over the limit" in [n["body"] for n in client.results[qid]]
        await bystander.sees_a_new_write()
        # A new identity re-runs the queries: the same ones are accepted.
        await client.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "None"})
        await client.wait_for(lambda: client.version["identity"] == 1, 30)
        assert sorted(client.results) == list(range(MAX_QUERIES))
        assert sorted(client.errors) == list(range(MAX_QUERIES, total))
        # Removing queries makes room again.
        for start in range(MAX_QUERIES - 5, total, 1000):
            await client.modify([{"type": "Remove", "queryId": qid}
                                 for qid in range(start, min(start + 1000, total))])
        await client.modify([add(total + i, "testapp:echo", {"value": -i}) for i in range(5)])
        await client.wait_for(lambda: all(total + i in client.results for i in range(5)))
        assert client.errors == {}
        assert client.results[total + 4] == -4
        response = await client.mutation("testapp:add_note", {"body": "after removing"})
        assert "after removing" in [n["body"] for n in client.results[live[0]]]


async def test_message_flood_closes_with_1013(limited_url: str) -> None:
    event = json.dumps({"type": "Event", "eventType": "x", "event": {}})
    async with Bystander(limited_url) as bystander:
        # A burst within the budget is fine.
        async with SyncClient(limited_url) as polite:
            for _ in range(BURST // 2):
                await polite.send_raw(event)
            query = await polite.subscribe("testapp:echo", {"value": 1})
            assert await polite.result(query) == 1
        # A flood is closed with 1013 and an overload reason (clients back off 3 s).
        async with SyncClient(limited_url) as offender:
            for _ in range(BURST * 3):
                try:
                    await offender.send_raw(event)
                except websockets.ConnectionClosed:
                    break
            code, reason = await offender.closed()
            assert code == CLOSE_TRY_LATER
            assert reason == "TooManyConcurrentRequests"
        await bystander.sees_a_new_write()
        # A flood of mutations too, and the ones that ran were committed.
        async with SyncClient(limited_url) as offender:
            for request_id in range(BURST * 2):
                try:
                    await offender.send({"type": "Mutation", "requestId": request_id,
                                         "udfPath": "testapp:add_note",
                                         "args": [{"body": f"flood {request_id}"}]})
                except websockets.ConnectionClosed:
                    break
            code, reason = await offender.closed()
            assert code == CLOSE_TRY_LATER
        # Nothing acknowledged was lost.
        acknowledged = {f"flood {r}" for r, m in offender.responses.items() if m["success"]}
        await bystander.sees_a_new_write()
        stored = {n["body"] for n in bystander.client.results[bystander.query]}
        assert acknowledged <= stored
    # The server may still be running flooded mutations: let it finish before the flush
    await asyncio.to_thread(wait_for, database_quiet, timeout=15, what="the flood's last writes")


@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://evil.example", False),
    ("https://127.0.0.1.evil.example", False),
    ("null", False),
    ("http://localhost", False),  # an ALLOWED_HOSTS host, but another port
    ("OTHER-PORT", False),  # the server's host and scheme, another port
    ("OTHER-SCHEME", False),  # the server's host and port over https
    ("SELF", True),  # the server's own origin, port included: a page it served
    ("SELF-UPPER", True),  # the same origin, differently cased
    ("http://allowed.example", True),  # WEBSOCKET_ALLOWED_ORIGINS
    ("http://ALLOWED.example:80", True),  # the same origin, spelled out
    ("http://allowed.example:8080", False),  # an allowed host on another port
])
async def test_websocket_origin_is_checked(limited_url: str, origin: str,
                                           allowed: bool) -> None:
    port = int(limited_url.rsplit(":", 1)[1])
    origin = {"SELF": limited_url, "SELF-UPPER": limited_url.upper(),
              "OTHER-PORT": f"http://127.0.0.1:{port + 1}",
              "OTHER-SCHEME": f"https://127.0.0.1:{port}"}.get(origin, origin)
    async with Bystander(limited_url) as bystander:
        client = SyncClient(limited_url, headers={"Origin": origin})
        if not allowed:
            with pytest.raises(websockets.InvalidStatus) as info:
                await client.__aenter__()
            assert info.value.response.status_code == 403
        else:
            async with client:
                query = await client.subscribe("testapp:echo", {"value": origin})
                assert await client.result(query) == origin
        await bystander.sees_a_new_write()


@pytest.mark.parametrize(("origin", "key"), [
    ("http://Example.COM", ("http", "example.com", 80)),
    ("https://example.com:443/", ("https", "example.com", 443)),
    ("http://[::1]:8000", ("http", "::1", 8000)),
    ("null", None),
    ("", None),
    ("example.com", None),
    ("ftp://example.com", None),
    ("http://example.com:notaport", None),
    ("http://example.com:99999", None),
    ("http://example.com/path", None),
    ("http://user@example.com", None),
    ("http://", None),
])
def test_origins_are_compared_by_scheme_host_and_port(
    origin: str, key: tuple[str, str, int] | None
) -> None:
    assert origin_key(origin) == key


def reactor_counts(url: str) -> dict[str, int]:
    response = requests.post(f"{url}/api/query", timeout=10, headers={
        "Authorization": "Convex tests-admin-key-0123456789"},
        json={"path": "testapp/bench:reactor_stats", "args": {}, "format": "json"})
    body = response.json()
    assert body.get("status") == "success", body
    return body["value"]  # type: ignore[no-any-return]


async def test_offenders_leave_nothing_behind_in_the_reactor(limited_url: str) -> None:
    # Given offenders of every kind, each closed by the server, next to a bystander
    async with Bystander(limited_url):
        async with SyncClient(limited_url) as offender:
            await offender.modify([add(q, "testapp:echo", {"value": q}) for q in range(600)])
            await offender.wait_for(lambda: len(offender.results) + len(offender.errors) == 600)
            await offender.send_raw("{oops")
            await expect_fatal(offender, "not valid JSON")
        async with SyncClient(limited_url) as offender:
            await offender.subscribe("testapp:list_notes")
            await offender.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin",
                                 "value": "wrong-admin-key-0123456789"})
            await offender.closed()
        async with SyncClient(limited_url) as offender:
            await offender.subscribe("testapp:list_notes")
            for _ in range(BURST * 2):
                try:
                    await offender.send_raw('{"type": "Event"}')
                except websockets.ConnectionClosed:
                    break
            assert (await offender.closed())[0] == CLOSE_TRY_LATER
    # Then, once no client is connected, the Reactor holds no session and no query
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (counts := await asyncio.to_thread(reactor_counts, limited_url))["sessions"]:
        assert loop.time() < deadline, counts
        await asyncio.sleep(0.1)
    assert counts["reactors"] == 1 and counts["queries"] == 0, counts
