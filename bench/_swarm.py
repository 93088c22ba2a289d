"""Many sync sessions spread over several client processes, so that the benchmark measures the
server and not its own decoding.

Each worker process holds its share of raw websockets (Connect, then one ModifyQuerySet adding
one query) and parses as little as it can: it finds the newest ``"body":"w<n>"`` in each frame
by a regular expression and records when the frame arrived. Arrival times are
``time.perf_counter()``, which on Linux is CLOCK_MONOTONIC, the same clock in every process,
so the parent compares them with its own commit times directly.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import resource
import time
import uuid
from collections import defaultdict
from multiprocessing.connection import Connection
from typing import Any

import websockets

WRITE = re.compile(rb'"body":"w(\d+)"')
SYNC_PATH = "/api/1.48.0/sync"
DCRF_PATH = "/dcrf/"  # bench/peer_dcrf's consumer: {"action": "subscribe", "channel": ...}
DCRF_SUBSCRIBED = b'"response_status": 200'


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Client:
    """One worker's sessions: channel per session, newest write seen and its arrival times."""

    def __init__(self, url: str, path: str, channels: list[str], concurrency: int,
                 compression: bool, dcrf: bool = False) -> None:
        self.dcrf = dcrf
        self.url = url.replace("http://", "ws://") + (DCRF_PATH if dcrf else SYNC_PATH)
        self.path, self.channels = path, channels
        self.concurrency, self.compression = concurrency, compression
        self.sockets: list[Any] = []
        self.ready = 0  # sessions that have their first result
        self.arrivals: dict[int, list[float]] = defaultdict(list)
        self.failures: list[str] = []
        self.connect_s: list[float] = []

    async def open(self) -> dict[str, Any]:
        began = time.perf_counter()
        for start in range(0, len(self.channels), self.concurrency):
            batch = self.channels[start:start + self.concurrency]
            await asyncio.gather(*(self._open_one(c) for c in batch))
        return {"opened": len(self.sockets), "seconds": time.perf_counter() - began,
                "connect_s": self.connect_s, "failures": self.failures[:5]}

    async def _open_one(self, channel: str) -> None:
        began = time.perf_counter()
        try:
            ws = await websockets.connect(
                self.url, open_timeout=60, max_size=2**25, ping_interval=None,
                compression="deflate" if self.compression else None)
        except Exception as exc:  # visible in the report, the other sessions go on
            self.failures.append(f"connect: {exc!r}")
            return
        self.connect_s.append(time.perf_counter() - began)
        self.sockets.append(ws)
        if self.dcrf:
            await ws.send(json.dumps({"action": "subscribe", "request_id": 1,
                                      "channel": channel}))
        else:
            await self._sync_hello(ws, channel)
        asyncio.get_running_loop().create_task(self._read(ws))

    async def _sync_hello(self, ws: Any, channel: str) -> None:
        await ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()),
                                  "connectionCount": 0, "clientTs": 0}))
        await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                                  "modifications": [{"type": "Add", "queryId": 0,
                                                     "udfPath": self.path,
                                                     "args": [{"channel": channel}]}]}))

    async def _read(self, ws: Any) -> None:
        newest, first = -1, True
        try:
            async for raw in ws:
                arrived = time.perf_counter()
                data = raw if isinstance(raw, bytes) else raw.encode()
                if first and self.dcrf and DCRF_SUBSCRIBED in data:
                    first = False
                    self.ready += 1
                if not data.startswith(b'{"type":"Transition"'):
                    continue
                if first and b'"QueryUpdated"' in data:
                    first = False
                    self.ready += 1
                # Every write newer than the last one seen (a round may carry several).
                found = [n for n in map(int, WRITE.findall(data)) if n > newest]
                for n in found:
                    self.arrivals[n].append(arrived)
                newest = max(found, default=newest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures.append(f"reader: {exc!r}")
        else:
            self.failures.append("closed by the server")

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


def _worker(conn: Connection, url: str, path: str, channels: list[str], concurrency: int,
            compression: bool, dcrf: bool) -> None:
    raise_fd_limit()
    asyncio.run(_serve(conn, _Client(url, path, channels, concurrency, compression, dcrf)))


async def _serve(conn: Connection, client: _Client) -> None:
    """Answer the parent's commands, one at a time, without blocking the readers."""
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            conn.send(await client.open())
        elif command == "ready":
            conn.send(client.ready)
        elif command == "arrivals":
            conn.send((dict(client.arrivals), client.failures[:5]))
            client.arrivals.clear()
        elif command == "close":
            await client.close()
            conn.send(None)
            return


class Swarm:
    """``len(channels)`` sessions over ``processes`` worker processes; session i subscribes
    ``path`` with ``{"channel": channels[i]}`` (``dcrf``: subscribes to channel i on
    bench/peer_dcrf's DCRF consumer instead)."""

    def __init__(self, url: str, path: str, channels: list[str], processes: int, *,
                 concurrency: int = 50, compression: bool = True, dcrf: bool = False) -> None:
        raise_fd_limit()
        ctx = multiprocessing.get_context("spawn")  # no copy of the parent's event loop/heap
        self._pipes: list[Connection] = []
        self._procs = []
        for k in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, daemon=True, args=(
                child, url, path, channels[k::processes], concurrency, compression, dcrf))
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    def _all(self, command: str) -> list[Any]:
        for pipe in self._pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self._pipes]

    def open(self) -> dict[str, Any]:
        """Connect every session (the workers in parallel); connect-time summary."""
        began = time.perf_counter()
        parts = self._all("open")
        times = sorted(t for p in parts for t in p["connect_s"])
        return {"opened": sum(p["opened"] for p in parts),
                "seconds": round(time.perf_counter() - began, 2),
                "handshake_p50_ms": round(times[len(times) // 2] * 1000, 1) if times else None,
                "handshake_p99_ms": round(times[int(len(times) * 0.99)] * 1000, 1)
                if times else None,
                "failures": [f for p in parts for f in p["failures"]][:5]}

    def ready(self) -> int:
        return sum(self._all("ready"))

    def arrivals(self) -> tuple[dict[int, list[float]], list[str]]:
        """Arrival times per write since the last call, merged over the workers."""
        merged: dict[int, list[float]] = defaultdict(list)
        failures: list[str] = []
        for part, fails in self._all("arrivals"):
            for n, times in part.items():
                merged[n] += times
            failures += fails
        return merged, failures

    def close(self) -> None:
        try:
            self._all("close")
        finally:
            for proc in self._procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()


def default_processes() -> int:
    return max(2, min(8, os.cpu_count() or 2))
