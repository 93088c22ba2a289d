"""A protocol-level test client for the sync websocket: raw frames, strict version checks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import requests
import websockets

from reactive import values


class SyncClient:
    """Speaks the sync protocol like the official clients, checking the Transition chain."""

    def __init__(self, url: str, *, path: str = "/api/1.48.0/sync",
                 headers: dict[str, str] | None = None, connect: bool = True,
                 max_queue: int = 16, compression: str | None = "deflate") -> None:
        self.url = url.replace("http://", "ws://") + path
        self.headers = headers or {}
        self.send_connect = connect
        self.max_queue = max_queue  # frames websockets buffers before it stops reading
        self.compression = compression  # None: do not offer permessage-deflate
        self.session_id = str(uuid.uuid4())
        self.version = {"querySet": 0, "identity": 0, "ts": values.encode_ts(0)}
        self.results: dict[int, Any] = {}
        self.errors: dict[int, dict[str, Any]] = {}
        self.responses: dict[int, dict[str, Any]] = {}
        self.transitions: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        # Called with each Transition once it is applied to ``results``/``errors``.
        self.on_transition: Callable[[dict[str, Any]], None] | None = None
        self._query_set = 0
        self._next_query = 0
        self._next_request = 0
        self.ws: Any = None

    async def __aenter__(self) -> SyncClient:
        self.ws = await websockets.connect(self.url, additional_headers=self.headers,
                                           open_timeout=10, max_size=2**25,
                                           max_queue=self.max_queue,
                                           compression=self.compression)
        if self.send_connect:
            await self.connect()
        return self

    async def connect(self) -> None:
        await self.send({"type": "Connect", "sessionId": self.session_id, "connectionCount": 0,
                         "lastCloseReason": "InitialConnect", "clientTs": 0})

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        """Send one frame as is (text for str, binary for bytes)."""
        await self.ws.send(frame)

    async def closed(self, timeout: float = 10) -> tuple[int | None, str]:
        """Read (and handle) messages until the server closes; return its close code and
        reason (code None: the server closed without sending a close frame)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"still open after {timeout}s; last: {self.other[-3:]}")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except websockets.ConnectionClosed as exc:
                return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
            self.handle(json.loads(raw))

    async def subscribe(self, path: str, args: dict[str, Any] | None = None,
                        journal: str | None = None) -> int:
        query_id = self._next_query
        self._next_query += 1
        add: dict[str, Any] = {"type": "Add", "queryId": query_id, "udfPath": path,
                               "args": [values.encode(args or {})]}
        if journal is not None:
            add["journal"] = journal
        await self.modify([add])
        return query_id

    async def unsubscribe(self, query_id: int) -> None:
        await self.modify([{"type": "Remove", "queryId": query_id}])

    async def modify(self, modifications: list[dict[str, Any]]) -> None:
        await self.send({"type": "ModifyQuerySet", "baseVersion": self._query_set,
                         "newVersion": self._query_set + 1, "modifications": modifications})
        self._query_set += 1

    async def mutation(self, path: str, args: dict[str, Any] | None = None,
                       timeout: float = 10) -> dict[str, Any]:
        """Send a mutation and wait as the official clients do: for its response, then for a
        Transition whose ts covers it."""
        request_id = await self.request("Mutation", path, args)
        response = await self.wait_for(lambda: self.responses.get(request_id), timeout)
        if response["success"]:
            ts = values.decode_ts(response["ts"])
            await self.wait_for(lambda: values.decode_ts(self.version["ts"]) >= ts, timeout)
        return response

    async def action(self, path: str, args: dict[str, Any] | None = None,
                     timeout: float = 10) -> dict[str, Any]:
        request_id = await self.request("Action", path, args)
        return await self.wait_for(lambda: self.responses.get(request_id), timeout)

    async def request(self, kind: str, path: str, args: dict[str, Any] | None) -> int:
        request_id = self._next_request
        self._next_request += 1
        await self.send({"type": kind, "requestId": request_id, "udfPath": path,
                         "args": [values.encode(args or {})]})
        return request_id

    async def wait_for(self, condition: Any, timeout: float = 10, tick: float = 0.5) -> Any:
        """Read messages until ``condition()`` is truthy; returns its value. The condition is
        also re-checked every ``tick`` seconds while nothing arrives (it may watch state other
        than this connection's)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout}s; last: {self.other[-3:]}")
            try:
                # Cancelling recv() loses nothing (websockets' asyncio API guarantees it).
                raw = await asyncio.wait_for(self.ws.recv(), min(remaining, tick))
            except TimeoutError:
                continue
            self.handle(json.loads(raw))

    async def result(self, query_id: int, predicate: Any = None, timeout: float = 10) -> Any:
        """Wait until query ``query_id`` has a result (satisfying ``predicate``)."""
        def ready() -> Any:
            if query_id not in self.results:
                return None
            value = self.results[query_id]
            return (value,) if predicate is None or predicate(value) else None

        return (await self.wait_for(ready, timeout))[0]

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "Transition":
            assert message["startVersion"] == self.version, (message["startVersion"],
                                                            self.version)
            assert values.decode_ts(message["endVersion"]["ts"]) >= values.decode_ts(
                self.version["ts"])
            self.version = message["endVersion"]
            self.transitions.append(message)
            for mod in message["modifications"]:
                if mod["type"] == "QueryUpdated":
                    self.results[mod["queryId"]] = values.decode(mod["value"])
                    self.errors.pop(mod["queryId"], None)
                elif mod["type"] == "QueryFailed":
                    self.errors[mod["queryId"]] = mod
                    self.results.pop(mod["queryId"], None)
                elif mod["type"] == "QueryRemoved":
                    self.results.pop(mod["queryId"], None)
                    self.errors.pop(mod["queryId"], None)
            if self.on_transition is not None:
                self.on_transition(message)
        elif kind in ("MutationResponse", "ActionResponse"):
            self.responses[message["requestId"]] = message
        else:
            self.other.append(message)


def http_call(url: str, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
    """Call a function over the HTTP API (``/api/<kind>``), return its clean-JSON value;
    raise AssertionError when it does not succeed. Blocking: use ``asyncio.to_thread``."""
    response = requests.post(f"{url}/api/{kind}", timeout=30,
                             json={"path": path, "args": args or {}, "format": "json"})
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", body
    return body["value"]


class Bystander:
    """A well-behaved client connected alongside an offender: subscribed to the notes before
    the offence, it must keep receiving correct updates (G8).

    ``async with Bystander(url) as b:`` connects, subscribes and checks one update; ``await
    b.sees_a_new_write()`` writes a note through a mutation on the same server and waits
    until the subscription shows it and equals the database; leaving the block checks once
    more. Any close of its socket or break in its Transition chain fails the test.
    """

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.url = url
        self.timeout = timeout
        self.client = SyncClient(url)
        self.query = -1
        self.checks = 0

    async def __aenter__(self) -> Bystander:
        await self.client.__aenter__()
        self.query = await self.client.subscribe("testapp:list_notes", {"limit": 1000})
        await self.client.result(self.query, timeout=self.timeout)
        await self.sees_a_new_write()
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                await self.sees_a_new_write()
        finally:
            await self.client.__aexit__()

    async def sees_a_new_write(self) -> None:
        body = f"bystander check {uuid.uuid4().hex}"
        await asyncio.to_thread(http_call, self.url, "mutation", "testapp:add_note",
                                {"body": body})
        await self.client.result(
            self.query, lambda notes: any(n["body"] == body for n in notes), self.timeout)
        await self.shows_the_database()
        unexpected = [m for m in self.client.other if m["type"] != "Ping"]
        assert not unexpected, unexpected
        assert self.query not in self.client.errors, self.client.errors
        self.checks += 1

    async def shows_the_database(self) -> None:
        """Wait until the subscription equals the notes in the database (read again while
        they differ: a write may still be landing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout

        def shown() -> list[tuple[str, str]]:
            return [(n["_id"], n["body"]) for n in self.client.results[self.query]]

        while True:
            expected = await asyncio.to_thread(http_call, self.url, "query",
                                               "testapp:list_notes", {"limit": 1000})
            want = [(n["_id"], n["body"]) for n in expected]
            try:
                await self.client.wait_for(lambda want=want: shown() == want,
                                           min(2.0, max(0.1, deadline - loop.time())))
                return
            except TimeoutError:
                if loop.time() >= deadline:
                    raise AssertionError(f"subscription {shown()[-3:]} != database "
                                         f"{want[-3:]}") from None
