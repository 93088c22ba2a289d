"""Log stream cost: queries that print and log (``testapp/dataio:chatty``) over HTTP, against a
server writing the shared log stream (``FUNCTION_LOGS_STREAM_SIZE`` 10000) and one with the
stream off (0), both live on the same database at once.

The two alternate in short slices (ABBA order) so drift on a shared machine hurts both alike.
Prints one JSON line; ``ratio`` is on_rps / off_rps. Also reports the stream's rows afterwards
and the time from a call to its entry being readable from the other server.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from typing import Any

from _common import Client, Run, database, emit, load, log, sql

from tests.support.servers import AsgiServer

KEY = "tests-admin-key-0123456789"
BODY = {"path": "testapp/dataio:chatty", "args": {"word": "bench", "times": 3}, "format": "json"}


def call(client: Client) -> str:
    status, reply = client.post("/api/query", BODY)
    ok = status == 200 and isinstance(reply, dict) and reply.get("status") == "success"
    return "ok" if ok else f"http_{status}"


def newest(url: str, cursor: int) -> tuple[list[Any], int]:
    request = urllib.request.Request(f"{url}/api/stream_function_logs?cursor={cursor}",
                                     headers={"Authorization": f"Convex {KEY}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        body = json.loads(response.read())
    return body["entries"], body["newCursor"]


def visibility_ms(on: str, off: str, samples: int) -> list[float]:
    """Call on one server; time until the other server's stream returns that call."""
    waits = []
    client = Client(on)
    for _ in range(samples):
        _, cursor = newest(off, 0)
        began = time.perf_counter()
        call(client)
        while True:
            entries, cursor = newest(off, cursor)
            if any(e["identifier"] == BODY["path"] for e in entries):
                break
        waits.append((time.perf_counter() - began) * 1000)
    client.close()
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per side")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--slice", type=float, default=1.5, help="seconds per alternation slice")
    parser.add_argument("--on-size", default="10000",
                        help="FUNCTION_LOGS_STREAM_SIZE of the 'on' server (0: an A/A run)")
    options = parser.parse_args()

    with database() as db_url:
        servers = {side: AsgiServer({"DATABASE_URL": db_url, "REACTIVE_LOG_STREAM_SIZE": size})
                   for side, size in (("on", options.on_size), ("off", "0"))}
        for server in servers.values():
            server.start()
        try:
            on, off = servers["on"].url, servers["off"].url
            pools = {url: [Client(url) for _ in range(options.clients)] for url in (on, off)}
            runs = {on: Run(), off: Run()}
            for url in (on, off):
                load(pools[url], 1.0, call)  # warm up
            slices = max(1, round(options.duration / options.slice))
            for i in range(slices):
                for url in ((on, off) if i % 2 == 0 else (off, on)):
                    runs[url].add(load(pools[url], options.duration / slices, call))
                log(f"slice {i + 1}/{slices}: on={runs[on].rate()} off={runs[off].rate()} req/s")
            for pool in pools.values():
                for client in pool:
                    client.close()
            waits = sorted(visibility_ms(on, off, 20)) if options.on_size != "0" else [0.0]
            rows = sql(db_url, "SELECT count(*) FROM reactive_functionlog")
        finally:
            for server in servers.values():
                server.stop()
    emit({
        "benchmark": "log_stream",
        "on_rps": runs[on].rate(), "off_rps": runs[off].rate(),
        "ratio": round(runs[on].rate() / runs[off].rate(), 3) if runs[off].rate() else None,
        "on_p50_ms": runs[on].ms(50), "off_p50_ms": runs[off].ms(50),
        "visible_elsewhere_p50_ms": round(waits[len(waits) // 2], 1),
        "visible_elsewhere_max_ms": round(waits[-1], 1),
        "stream_rows": rows,
        "errors": sum(sum(r.outcomes.values()) - r.ok for r in runs.values()),
        "clients": options.clients, "duration_s": options.duration, "on_size": options.on_size,
    })


if __name__ == "__main__":
    main()
