"""Drives the PyPI ``convex.ConvexClient`` in its own process for tests/live/test_python_sync.py.

Usage: ``python tests/support/pyclient_driver.py <deployment url>``. Commands are JSON lines
on stdin:
``{"id", "op": "query"|"mutation"|"action", "name", "args"}`` → a ``result`` event;
``{"id", "op": "subscribe", "name", "args"}`` → an ``update`` event per value it yields;
``{"id", "op": "admin", "key"}``; ``{"id", "op": "auth", "token"}``. Values cross as JSON
with ``{"$int64": "<n>"}`` for ``ConvexInt64`` and ``{"$bytes": "<hex>"}`` for bytes, both
ways. The client's calls block and
hold the GIL, which is why it runs here and not in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

from convex import ConvexClient, ConvexError, ConvexInt64

_print_lock = threading.Lock()


def emit(message: dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def to_json(value: Any) -> Any:
    if isinstance(value, ConvexInt64):
        return {"$int64": str(value.value)}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$int64"}:
            return ConvexInt64(int(value["$int64"]))
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def error(exc: Exception) -> dict[str, Any]:
    data = to_json(exc.data) if isinstance(exc, ConvexError) else None
    return {"ok": False, "type": type(exc).__name__, "message": str(exc), "data": data}


async def follow(command_id: Any, subscription: Any) -> None:
    while True:
        try:
            value = await subscription.__anext__()
        except Exception as exc:  # a failed query: the iterator raises, then goes on
            emit({"event": "update", "id": command_id, **error(exc)})
            continue
        emit({"event": "update", "id": command_id, "ok": True, "value": to_json(value)})


async def main(url: str) -> None:
    client = ConvexClient(url)
    loop = asyncio.get_running_loop()
    followers: set[asyncio.Task[None]] = set()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        op, command_id = command["op"], command.get("id")
        if op == "subscribe":
            subscription = client.subscribe(command["name"], from_json(command.get("args")))
            followers.add(loop.create_task(follow(command_id, subscription)))
            emit({"event": "subscribed", "id": command_id})
        elif op == "auth":
            client.set_auth(command["token"])
            emit({"event": "result", "id": command_id, "ok": True, "value": None})
        elif op == "admin":
            client.set_admin_auth(command["key"])
            emit({"event": "result", "id": command_id, "ok": True, "value": None})
        else:
            call = getattr(client, op)
            try:
                value = call(command["name"], from_json(command.get("args")))
            except Exception as exc:
                emit({"event": "result", "id": command_id, **error(exc)})
            else:
                emit({"event": "result", "id": command_id, "ok": True, "value": to_json(value),
                      "pytype": type(value).__name__})
        await asyncio.sleep(0)  # let followers report what arrived meanwhile


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
