"""The floor under memory per idle session: server RSS per idle websocket for three stacks on
the same servers, in one run.

Stacks (``--stacks``): ``bare``, a minimal ASGI app with no Django and no Channels
(``bench/floor/bare.py``: accept, then read and drop frames); ``channels``, a bare
``AsyncWebsocketConsumer`` behind Channels' ``AuthMiddlewareStack(URLRouter(...))`` in the
test project (``bench/floor/channels_app.py``); ``ours``, the test project's sync endpoint
with one distinct ``testapp/bench:channel_messages`` subscription per session (as
``bench/peer_dcrf.py`` measures it); ``dcrf``, the djangochannelsrestframework peer of
``bench/peer_dcrf.py`` (in-memory channel layer), each session subscribed to a distinct
channel. Servers (``--servers``): names from
``bench/_live.py`` ``SERVERS``. Every pair gets a fresh server process; the clients are
``bench/_swarm.py`` worker processes (raw websockets offering permessage-deflate, as browsers
and Node's ``ws`` do), each session sending Connect and a ModifyQuerySet (the peer's: a
``subscribe`` action), which the floor apps drop. Memory: the server's RSS growth from one
warm session to ``--sessions`` idle ones (median of five readings each), divided by the
sessions. Objects: how many more objects the server's garbage collector tracks per idle
session (after a full collection, asked through ``bench/gcprobe``), which is what each full
collection walks, and so what its pause grows with. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import uuid
from typing import Any

from _common import database, emit, log
from _live import (
    CHANNEL_QUERY,
    SERVERS,
    poll,
    server_pid,
    steady_rss,
    tracked_objects,
    with_gc_probe,
)
from _swarm import Swarm, default_processes, raise_fd_limit

from tests.support.servers import AsgiServer

APPS = {
    "bare": "bench.floor.bare:application",
    "channels": "bench.floor.channels_app:application",
    "ours": "tests.asgi:application",
    "dcrf": "bench.peer_dcrf.asgi:application",
}
DCRF_ENV = {"DJANGO_SETTINGS_MODULE": "bench.peer_dcrf.settings", "BENCH_STACK": "dcrf",
            "BENCH_LAYER": "memory"}
DEFAULT_SERVERS = ("uvicorn", "uvicorn-noping", "uvicorn-nodeflate", "uvicorn-nodeflate-noping",
                   "uvicorn-wsproto-nodeflate", "daphne")


class FloorServer(AsgiServer):
    """tests.support.servers.AsgiServer serving one of ``APPS``."""

    def __init__(self, env: dict[str, str], stack: str, server: str) -> None:
        name, args = SERVERS[server]
        super().__init__(env, server=name, args=args)
        self.app = APPS[stack]

    def command(self) -> list[str]:
        return [*super().command()[:-1], self.app]



def hold(url: str, stack: str, channels: list[str], processes: int, timeout: float) -> Any:
    """Open a swarm of ``len(channels)`` sessions; for ``ours``, wait for every first result
    (the peer: every subscription confirmed). Returns (swarm, open summary, all ready?)."""
    swarm = Swarm(url, CHANNEL_QUERY, channels, processes, dcrf=stack == "dcrf")
    opened = swarm.open()
    ready = stack not in ("ours", "dcrf") or poll(
        lambda: swarm.ready() >= opened["opened"], timeout, 0.5)
    return swarm, opened, ready


def measure_one(stack: str, server_name: str, db_url: str,
                options: argparse.Namespace) -> dict[str, Any]:
    env = with_gc_probe({"DATABASE_URL": db_url, **(DCRF_ENV if stack == "dcrf" else {})})
    server = FloorServer(env, stack, server_name)
    log(f"{stack} on {server_name}: starting; log at {server.log_path}")
    load = os.getloadavg()[0]
    server.start()
    try:
        pid = server_pid(server)
        prefix = uuid.uuid4().hex[:8]
        warm, _, _ = hold(server.url, stack, [f"{prefix}-warm"], 1, 60)
        warm.close()
        rss_start = steady_rss(pid)
        objects_start = tracked_objects(server, pid)
        swarm, opened, ready = hold(server.url, stack,
                                    [f"{prefix}-{i}" for i in range(options.sessions)],
                                    options.processes, options.timeout)
        try:
            rss_idle = steady_rss(pid)
            objects_idle = tracked_objects(server, pid)
        finally:
            swarm.close()
    finally:
        server.stop()
    sockets = max(opened["opened"], 1)
    per = round((rss_idle - rss_start) / sockets)
    objects = round((objects_idle - objects_start) / sockets, 1)
    log(f"{stack} on {server_name}: {opened['opened']} sockets, {per} bytes and "
        f"{objects} tracked objects each")
    return {"stack": stack, "server": server_name, "opened": opened["opened"],
            "all_ready": ready, "failures": opened["failures"],
            "rss_start_mib": round(rss_start / 2**20, 1),
            "rss_idle_mib": round(rss_idle / 2**20, 1), "bytes_per_idle_session": per,
            "tracked_objects_per_idle_session": objects,
            "load_1m": [round(load, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--stacks", default="bare,channels,ours,dcrf",
                        help=f"comma-separated, of {', '.join(APPS)}")
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                        help=f"comma-separated, of {', '.join(sorted(SERVERS))}")
    parser.add_argument("--processes", type=int, default=default_processes(),
                        help="client processes")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for every session's first result (ours)")
    options = parser.parse_args()
    stacks = [s for s in options.stacks.split(",") if s]
    servers = [s for s in options.servers.split(",") if s]
    if "dcrf" in stacks and importlib.util.find_spec("djangochannelsrestframework") is None:
        sys.exit("the dcrf stack needs the peer installed: pip install -e '.[bench]'")
    unknown = [s for s in stacks if s not in APPS] + [s for s in servers if s not in SERVERS]
    if unknown or not stacks or not servers or options.sessions < 1:
        parser.error(f"unknown or missing stack/server names, or --sessions < 1: {unknown}")
    raise_fd_limit()  # the server processes inherit it
    rows = []
    with database() as db_url:
        for server_name in servers:  # the stacks side by side per server: same machine state
            for stack in stacks:
                try:
                    rows.append(measure_one(stack, server_name, db_url, options))
                except (RuntimeError, TimeoutError) as exc:  # say so; the other pairs go on
                    log(f"{stack} on {server_name} failed: {exc}")
                    rows.append({"stack": stack, "server": server_name, "error": str(exc)[-500:]})
    emit({"benchmark": "socket_floor", "sessions": options.sessions,
          "client_processes": options.processes,
          "bytes_per_idle_session": by_server(rows, "bytes_per_idle_session"),
          "tracked_objects_per_idle_session": by_server(rows, "tracked_objects_per_idle_session"),
          "runs": rows})


def by_server(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``{server: {stack: row[key]}}``, None where the pair failed."""
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        table.setdefault(row["server"], {})[row["stack"]] = row.get(key)
    return table


if __name__ == "__main__":
    main()
