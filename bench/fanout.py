"""Many sessions on one server process, the clients in several processes: memory per idle
session, connect time, and commit → push latency, at 1,000 or 10,000 sessions.

``--sessions`` sessions each subscribe ``testapp/bench:channel_messages`` for channel
``i % --channels``: ``--channels 1`` is fan-out (every session holds the one shared query),
``--channels`` equal to ``--sessions`` is one distinct query per session. A writer in this
process commits plain INSERTs into ``--active`` channels at ``--rate`` per second (open loop);
latency runs from the commit returning to each session's frame arrival (CLOCK_MONOTONIC, the
same clock in the client processes). ``last_arrival`` is, per write, when its last subscriber
got it. Memory: the server's RSS growth from one warm session to all sessions subscribed and
idle (median of five readings), divided by the sessions. ``full_collections``: the server's
full garbage collections while the writes were pushed (``bench/gcprobe``), how long each
stopped it; ``--gc-freeze`` serves with ``gc.freeze()`` after start-up, as
docs/guides/deployment.md suggests. ``--bystander``: while the writes go on, a client that is
no subscriber sends ``POST /api/query_ts`` every 20 ms over one keep-alive connection; its
round trips show how long the server's event loop stays busy with a fan-out before it serves
anyone else (its requests add to the server's CPU per write). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from _common import Client, database, emit, log
from _live import (
    CHANNEL_QUERY,
    SERVERS,
    Writer,
    cpu_seconds,
    latency_summary,
    paced,
    poll,
    server_pid,
    steady_rss,
    with_gc_probe,
)
from _swarm import Swarm, default_processes, raise_fd_limit

from tests.support.servers import AsgiServer

GC_PROBE = re.compile(r"^reactive-gcprobe ([0-9.]+) ([0-9.]+)$", re.MULTILINE)


class Bystander(threading.Thread):
    """Round trips of a cheap HTTP request every ``every`` seconds until ``stop``."""

    def __init__(self, url: str, every: float = 0.02) -> None:
        super().__init__(name="bystander", daemon=True)
        self.url, self.every = url, every
        self.rtts: list[float] = []
        self.failures = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        client = Client(self.url)
        while not self._stop_event.wait(self.every):
            began = time.perf_counter()
            status, _ = client.post("/api/query_ts", {})
            if status == 200:
                self.rtts.append(time.perf_counter() - began)
            else:
                self.failures += 1
        client.close()

    def stop(self) -> dict[str, Any]:
        self._stop_event.set()
        self.join(10)
        return {**latency_summary(self.rtts), "requests": len(self.rtts),
                "failures": self.failures}


def warm(url: str, channel: str) -> None:
    """One session through the whole path (imports, the Reactor) before the baseline."""
    swarm = Swarm(url, CHANNEL_QUERY, [channel], 1)
    swarm.open()
    poll(lambda: swarm.ready() == 1, 60)
    swarm.close()


def measure(options: argparse.Namespace, db_url: str, server: AsgiServer) -> dict[str, Any]:
    pid = server_pid(server)
    prefix = uuid.uuid4().hex[:8]
    channels = [f"{prefix}-{i}" for i in range(options.channels)]
    mine = [channels[i % len(channels)] for i in range(options.sessions)]
    subscribers: dict[str, int] = defaultdict(int)
    for channel in mine:
        subscribers[channel] += 1
    warm(server.url, f"{prefix}-warm")
    rss_start = steady_rss(pid)
    log(f"opening {options.sessions} sessions from {options.processes} client processes")
    swarm = Swarm(server.url, CHANNEL_QUERY, mine, options.processes,
                  concurrency=options.concurrency, compression=not options.client_no_deflate)
    try:
        opened = swarm.open()
        began = time.perf_counter()
        complete = poll(lambda: swarm.ready() >= opened["opened"], options.timeout, 0.5)
        first_results_s = time.perf_counter() - began
        log(f"{opened['opened']} open in {opened['seconds']} s, first results "
            f"{'all' if complete else 'NOT all'} in {first_results_s:.1f} s")
        rss_idle = steady_rss(pid)
        pushes = push(options, db_url, swarm, channels[:options.active], subscribers, server)
    finally:
        swarm.close()
    pushes["full_collections"] = full_collections(server, *pushes.pop("window"))
    return {
        "benchmark": "fanout", "server": options.server, "sessions": options.sessions,
        "channels": options.channels, "active": options.active, "rate": options.rate,
        "client_processes": options.processes,
        "connect": {**opened, "first_results_s": round(first_results_s, 2),
                    "all_first_results": complete},
        "rss_start_mib": round(rss_start / 2**20, 1), "rss_idle_mib": round(rss_idle / 2**20, 1),
        "bytes_per_idle_session": round((rss_idle - rss_start) / options.sessions),
        "gc_freeze": options.gc_freeze, **pushes,
    }


def push(options: argparse.Namespace, db_url: str, swarm: Swarm, active: list[str],
         subscribers: dict[str, int], server: AsgiServer) -> dict[str, Any]:
    """Warm-up writes, then the measured ones; every arrival of each measured write, and the
    bystander's round trips meanwhile."""
    pid = server_pid(server)
    writer = Writer(db_url)
    for n in range(3):
        writer.insert(active[n % len(active)], f"w{n}")
        time.sleep(0.3)
    time.sleep(1.0)  # let the warm-up's pushes land
    swarm.arrivals()  # drop the warm-up's
    commits: dict[int, tuple[str, float]] = {}
    first = 1_000_000
    cpu_before = cpu_seconds(pid)
    log(f"writing {options.rate}/s for {options.duration}s")
    bystander = Bystander(server.url) if options.bystander else None
    if bystander is not None:
        bystander.start()
    for step in paced(options.rate, options.duration):
        n = first + step
        channel = active[n % len(active)]
        commits[n] = (channel, writer.insert(channel, f"w{n}"))
    writer.close()
    bystanding = bystander.stop() if bystander is not None else None
    arrivals: dict[int, list[float]] = defaultdict(list)
    failures: list[str] = []

    def collect() -> bool:
        part, fails = swarm.arrivals()
        for n, times in part.items():
            arrivals[n] += times
        failures.extend(fails)
        return all(len(arrivals[n]) >= subscribers[c] for n, (c, _) in commits.items())

    poll(collect, options.grace, 0.5)
    ended = max((max(times) for times in arrivals.values() if times), default=time.perf_counter())
    cpu = cpu_seconds(pid) - cpu_before
    every = [t - commits[n][1] for n, times in arrivals.items() if n in commits for t in times]
    last = [max(times) - commits[n][1] for n, times in arrivals.items()
            if n in commits and len(times) >= subscribers[commits[n][0]]]
    expected = sum(subscribers[c] for c, _ in commits.values())
    return {
        "writes": len(commits),
        "push": {**latency_summary(every), "deliveries": len(every), "expected": expected,
                 "missing": expected - len(every)},
        "last_arrival": {**latency_summary(last), "complete_writes": len(last)},
        "server_cpu_ms_per_write": round(cpu * 1000 / max(len(commits), 1), 2),
        "bystander": bystanding,
        "client_failures": failures[:5],
        "window": (min((t for _, t in commits.values()), default=ended), ended),
    }


def full_collections(server: AsgiServer, start: float, end: float) -> dict[str, Any]:
    """The server's full garbage collections that began between the first measured commit
    and the last arrival, from ``bench/gcprobe``'s lines in its log."""
    pauses = [float(ms) for began, ms in GC_PROBE.findall(server.log_path.read_text())
              if start <= float(began) <= end]
    return {"count": len(pauses), "max_ms": max(pauses, default=0.0),
            "total_ms": round(sum(pauses), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=1,
                        help="distinct channels; session i subscribes to channel i %% channels")
    parser.add_argument("--active", type=int, default=1, help="channels that get writes")
    parser.add_argument("--rate", type=float, default=2.0, help="writes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writes")
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for every session's first result")
    parser.add_argument("--processes", type=int, default=default_processes(),
                        help="client processes")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="handshakes in flight per client process")
    parser.add_argument("--server", choices=sorted(SERVERS), default="uvicorn")
    parser.add_argument("--client-no-deflate", action="store_true",
                        help="clients do not offer permessage-deflate")
    parser.add_argument("--bystander", action="store_true",
                        help="time a non-subscriber's HTTP requests during the writes")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="the server calls gc.freeze() after start-up")
    options = parser.parse_args()
    options.active = min(options.active, options.channels)
    raise_fd_limit()  # the server process inherits it
    name, args = SERVERS[options.server]
    with database() as db_url:
        env = with_gc_probe({"DATABASE_URL": db_url,
                             **({"REACTIVE_TEST_GC_FREEZE": "1"} if options.gc_freeze else {})})
        server = AsgiServer(env, server=name, args=args)
        log(f"starting {options.server}; log at {server.log_path}")
        server.start()
        try:
            result = measure(options, db_url, server)
        finally:
            server.stop()
    emit(result)


if __name__ == "__main__":
    main()
