"""Push latency side by side with a peer: djangochannelsrestframework (DCRF) model observers.

Two uvicorn processes, each on its own database: ours (the sync protocol, live query
``testapp/bench:channel_messages`` per channel) and the peer (a DCRF ``model_observer`` on
Message, one group per channel; channel layer ``--layer memory`` or ``redis``). Each holds
``--sessions`` websocket sessions subscribed to one channel each. Both are driven by the same
write: ``POST /bench/post``, a plain view doing ``Message.objects.create`` in that server (DCRF
only sees ORM saves in its own process). Latency runs from just before the write request is
sent to the arrival of the push that shows the row, so the HTTP write counts alike for both.
The two take turns in slices (ABBA) so machine noise hits both. Prints one JSON line;
``ratio_*`` is ours / peer, and the aim is ours at most half of the peer's latency.

Each side's latency is also split where the view's ``create()`` returned (the server reports
the moment; one monotonic clock on Linux): ``write_to_saved``, the same work on both stacks,
and ``saved_to_client``, the push. The peer's push mostly leaves inside ``create()`` (its
``post_save`` receiver), so its ``saved_to_client`` can be small or negative.
``aim_room_p99_ms`` is half the peer's p99 less our own ``write_to_saved`` p99: what the aim
leaves for our push.

The peer does less than we do per write: it forwards the saved instance (a delta) and runs no
query; we re-run the channel's query at a fresh snapshot and send its result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg
import websockets
from _common import Client, database, emit, log
from _live import (
    CHANNEL_QUERY,
    SERVERS,
    Session,
    close_sessions,
    freeze_heap,
    latency_summary,
    open_sessions,
    paced,
    server_pid,
    steady_rss,
    wait_until,
)

from tests.support.servers import AsgiServer, redis

SETTINGS = "bench.peer_dcrf.settings"
APP = "bench.peer_dcrf.asgi:application"


class BenchServer(AsgiServer):
    """tests.support.servers.AsgiServer serving bench.peer_dcrf (one stack per process)."""

    def __init__(self, env: dict[str, str], server: str = "uvicorn") -> None:
        name, args = SERVERS[server]
        super().__init__(env, server=name, args=args)
        self._env["DJANGO_SETTINGS_MODULE"] = SETTINGS

    def command(self) -> list[str]:
        return [*super().command()[:-1], APP]


@contextlib.contextmanager
def serving(env: dict[str, str], server_name: str) -> Iterator[BenchServer]:
    server = BenchServer(env, server_name)
    log(f"starting {env['BENCH_STACK']} on {server_name}; log at {server.log_path}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pooled(db_url: str) -> str:
    """dj-database-url reads ``?pool=true`` into OPTIONS: Django's psycopg connection pool."""
    return db_url + ("&" if "?" in db_url else "?") + "pool=true"


def drop_capture_triggers(db_url: str) -> None:
    """The peer's database needs no change capture: its writes should not pay for it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for suffix in ("ins", "upd", "del", "trunc"):
            conn.execute(f"DROP TRIGGER IF EXISTS reactive_{suffix} ON testapp_message")


class Arrivals:
    """When each write ``w<n>`` reached each session that should see it."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = defaultdict(list)
        self._newest: dict[tuple[int, int], int] = {}

    def seen(self, who: tuple[int, int], bodies: list[str], arrived: float) -> None:
        newest = self._newest.get(who, -1)
        ids = [int(b[1:]) for b in bodies if b.startswith("w")]
        for n in ids:
            if n > newest:
                self.times[n].append(arrived)
        self._newest[who] = max([newest, *ids])

    def on_update(self, session: Session, query_id: int, value: Any, arrived: float) -> None:
        self.seen((id(session), query_id), [m["body"] for m in value], arrived)


class DcrfSession:
    """A websocket to the DCRF consumer: subscribe to a channel, record each pushed row."""

    def __init__(self, base_url: str, arrivals: Arrivals) -> None:
        self.url = base_url.replace("http://", "ws://") + "/dcrf/"
        self.arrivals = arrivals
        self.subscribed = False
        self.failures: list[str] = []

    async def start(self, channel: str) -> None:
        self.ws = await websockets.connect(self.url, open_timeout=10)
        await self.ws.send(json.dumps({"action": "subscribe", "request_id": 1,
                                       "channel": channel}))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def stop(self) -> None:
        self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                if message.get("request_id") == 1:
                    self.subscribed = message.get("response_status") == 200
                elif "body" in message:
                    self.arrivals.seen((id(self), 0), [message["body"]], arrived)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures.append(f"reader: {exc!r}")


class Side:
    """One stack: its server, its sessions and channels, and its timed writes."""

    def __init__(self, name: str, server: BenchServer, channels: int, active: int) -> None:
        self.name, self.server = name, server
        self.channels = [f"{name}-{uuid.uuid4().hex[:6]}-{i}" for i in range(channels)]
        self.active = self.channels[:active]
        self.subscribers: dict[str, int] = defaultdict(int)
        self.arrivals = Arrivals()
        self.sent: dict[int, tuple[str, float]] = {}
        self.saved: dict[int, float] = {}  # when the server's create() returned, per write
        self.write_rtt: list[float] = []
        self.failures: list[str] = []

    def write_slice(self, rate: float, seconds: float, first: int) -> int:
        """Writes at ``rate`` for ``seconds`` through this side's /bench/post; next free n."""
        client = Client(self.server.url)
        n = first
        for step in paced(rate, seconds):
            n = first + step
            channel = self.active[n % len(self.active)]
            began = time.perf_counter()
            status, body = client.post("/bench/post", {"channel": channel, "body": f"w{n}"})
            self.write_rtt.append(time.perf_counter() - began)
            if status == 200:
                self.sent[n] = (channel, began)
                self.saved[n] = body["saved"]
            else:
                self.failures.append(f"write {n}: HTTP {status}")
        client.close()
        return n + 1

    def done(self) -> bool:
        return all(len(self.arrivals.times.get(n, ())) >= self.subscribers[c]
                   for n, (c, _) in self.sent.items())

    def report(self, measured_from: int) -> dict[str, Any]:
        sent = {n: v for n, v in self.sent.items() if n >= measured_from}
        latencies = [t - began for n, (_, began) in sent.items()
                     for t in self.arrivals.times.get(n, ())]
        expected = sum(self.subscribers[c] for c, _ in sent.values())
        # The two halves of each arrival: the write until its create() returned (the same
        # view on both stacks), then the push from there on.
        to_saved = [self.saved[n] - began for n, (_, began) in sent.items()]
        from_saved = [t - self.saved[n] for n in sent for t in self.arrivals.times.get(n, ())]
        return {**latency_summary(latencies), "writes": len(sent), "deliveries": len(latencies),
                "missing": expected - len(latencies),
                "write_request_ms": latency_summary(self.write_rtt)["p50_ms"],
                "write_to_saved": latency_summary(to_saved),
                "saved_to_client": latency_summary(from_saved),
                "failures": self.failures[:5]}


async def connect_ours(side: Side, sessions: int) -> list[Session]:
    """Like ``connect_peer``: 50 handshakes at a time, each batch subscribing as it connects
    (a thousand subscriptions in one burst would measure the burst's transient memory)."""
    ours: list[Session] = []
    for start in range(0, sessions, 50):
        batch = await open_sessions(side.server.url, min(50, sessions - start),
                                    side.arrivals.on_update)
        for i, session in enumerate(batch, start):
            channel = side.channels[i % len(side.channels)]
            side.subscribers[channel] += 1
            await session.subscribe_many(CHANNEL_QUERY, [{"channel": channel}])
        ours += batch
    await wait_until(lambda: all(s.results for s in ours), 120, "our first results")
    return ours


async def connect_peer(side: Side, sessions: int) -> list[DcrfSession]:
    peers = []
    for start in range(0, sessions, 50):
        batch = [DcrfSession(side.server.url, side.arrivals)
                 for _ in range(min(50, sessions - start))]
        channels = [side.channels[(start + j) % len(side.channels)] for j in range(len(batch))]
        await asyncio.gather(*(s.start(c) for s, c in zip(batch, channels, strict=True)))
        for channel in channels:
            side.subscribers[channel] += 1
        peers += batch
    await wait_until(lambda: all(s.subscribed for s in peers), 60, "peer subscriptions")
    return peers


async def measure(options: argparse.Namespace, ours: Side, peer: Side) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    log("warming both stacks with one session each")
    await close_sessions(await connect_ours(ours, 1))
    await asyncio.gather(*(s.stop() for s in await connect_peer(peer, 1)))
    ours.subscribers.clear()
    peer.subscribers.clear()
    # The readings sleep in a thread: this loop keeps reading the sessions' frames meanwhile.
    rss_before = {side.name: await asyncio.to_thread(steady_rss, server_pid(side.server))
                  for side in (ours, peer)}
    log(f"connecting {options.sessions} sessions to each stack")
    our_sessions = await connect_ours(ours, options.sessions)
    peer_sessions = await connect_peer(peer, options.sessions)
    # idle: every session subscribed, no writes yet
    memory = {side.name: round((await asyncio.to_thread(steady_rss, server_pid(side.server))
                                - rss_before[side.name]) / options.sessions)
              for side in (ours, peer)}
    freeze_heap()
    log("warming up")
    n = 0
    for side in (ours, peer):
        n = await loop.run_in_executor(None, side.write_slice, options.rate, 2.0, n)
    first = n = 1_000_000
    slices = max(1, round(options.duration / options.slice))
    for i in range(slices):
        order = (ours, peer) if i % 2 == 0 else (peer, ours)
        for side in order:
            n = await loop.run_in_executor(None, side.write_slice, options.rate,
                                           options.duration / slices, n)
        log(f"slice {i + 1}/{slices} done")
    try:
        await wait_until(lambda: ours.done() and peer.done(), options.grace, "last pushes")
    except TimeoutError as exc:
        log(str(exc))
    ours.failures += [f for s in our_sessions for f in s.failures]
    peer.failures += [f for s in peer_sessions for f in s.failures]
    await close_sessions(our_sessions)
    await asyncio.gather(*(s.stop() for s in peer_sessions), return_exceptions=True)
    mine, theirs = ours.report(first), peer.report(first)

    def ratio(key: str) -> float | None:
        return round(mine[key] / theirs[key], 2) if theirs[key] else None

    return {
        "benchmark": "peer_dcrf", "layer": options.layer, "sessions": options.sessions,
        "channels": options.channels, "active": options.active, "rate": options.rate,
        "ours": mine, "dcrf": theirs,
        "servers": {"ours": options.server, "dcrf": options.peer_server},
        "bytes_per_idle_session": memory,
        "ratio_memory": round(memory["ours"] / memory["dcrf"], 2) if memory["dcrf"] else None,
        "ratio_p50": ratio("p50_ms"), "ratio_p99": ratio("p99_ms"),
        # What the aim leaves for our push once our own write has saved, at p99: negative
        # means the write alone is over half the peer's p99.
        "aim_room_p99_ms": round(theirs["p99_ms"] / 2 - mine["write_to_saved"]["p99_ms"], 2)
        if theirs["p99_ms"] else None,
        "meets_aim": bool(theirs["p50_ms"]) and mine["p50_ms"] <= theirs["p50_ms"] / 2
        and mine["p99_ms"] <= theirs["p99_ms"] / 2 and mine["missing"] == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200, help="sessions per stack")
    parser.add_argument("--no-deflate", action="store_true",
                        help="both servers: uvicorn --ws-per-message-deflate false (the same "
                             "as --server uvicorn-nodeflate)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="uvicorn",
                        help="the ASGI server and its websocket options for both stacks")
    parser.add_argument("--peer-server", choices=sorted(SERVERS),
                        help="the peer's, if it differs (default: --server)")
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--active", type=int, default=20, help="channels that get writes")
    parser.add_argument("--rate", type=float, default=25.0, help="writes per second")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per side")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds per turn")
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--layer", choices=["memory", "redis"], default="memory",
                        help="the peer's channel layer")
    options = parser.parse_args()
    if importlib.util.find_spec("djangochannelsrestframework") is None:
        sys.exit("peer_dcrf.py needs the peer installed: pip install -e '.[bench]'")
    if options.no_deflate:
        options.server = "uvicorn-nodeflate"
    options.peer_server = options.peer_server or options.server
    with contextlib.ExitStack() as stack:
        ours_db = stack.enter_context(database("reactive_bench"))
        peer_db = stack.enter_context(database("reactive_peer"))
        drop_capture_triggers(peer_db)
        # Django's connection pool for both: without it each HTTP write opens a connection.
        peer_env = {"DATABASE_URL": pooled(peer_db), "BENCH_STACK": "dcrf",
                    "BENCH_LAYER": options.layer}
        if options.layer == "redis":
            peer_env["REDIS_URL"] = stack.enter_context(redis())
        ours = Side("ours", stack.enter_context(serving(
            {"DATABASE_URL": pooled(ours_db), "BENCH_STACK": "ours"}, options.server)),
            options.channels,
            options.active)
        peer = Side("dcrf", stack.enter_context(serving(peer_env, options.peer_server)),
                    options.channels, options.active)
        result = asyncio.run(measure(options, ours, peer))
    emit(result)


if __name__ == "__main__":
    main()
