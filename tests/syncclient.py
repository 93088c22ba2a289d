"""A protocol-level test client for the sync websocket: raw frames, strict version checks."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

from reactive import values


class SyncClient:
    """Speaks the sync protocol like the official clients, checking the Transition chain."""

    def __init__(self, url: str, *, path: str = "/api/1.48.0/sync",
                 headers: dict[str, str] | None = None) -> None:
        self.url = url.replace("http://", "ws://") + path
        self.headers = headers or {}
        self.session_id = str(uuid.uuid4())
        self.version = {"querySet": 0, "identity": 0, "ts": values.encode_ts(0)}
        self.results: dict[int, Any] = {}
        self.errors: dict[int, dict[str, Any]] = {}
        self.responses: dict[int, dict[str, Any]] = {}
        self.transitions: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self._query_set = 0
        self._next_query = 0
        self._next_request = 0
        self.ws: Any = None

    async def __aenter__(self) -> SyncClient:
        self.ws = await websockets.connect(self.url, additional_headers=self.headers,
                                           open_timeout=10, max_size=2**25)
        await self.send({"type": "Connect", "sessionId": self.session_id, "connectionCount": 0,
                         "lastCloseReason": "InitialConnect", "clientTs": 0})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

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

    async def wait_for(self, condition: Any, timeout: float = 10) -> Any:
        """Read messages until ``condition()`` is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout}s; last: {self.other[-3:]}")
            raw = await asyncio.wait_for(self.ws.recv(), remaining)
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
        elif kind in ("MutationResponse", "ActionResponse"):
            self.responses[message["requestId"]] = message
        else:
            self.other.append(message)
