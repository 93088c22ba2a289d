"""Mutation throughput: ``POST /api/mutation`` (testapp:add_note) against the same ORM write
in a plain Django view (``POST /plain/note``), on one live uvicorn process.

The two alternate in short slices (ABBA order) so drift on a shared machine hurts both alike.
Prints one JSON line; ``ratio`` is reactive_rps / plain_rps.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from _common import Client, Run, database, emit, live_server, load, log, sql

PLAIN = "/plain/note"
REACTIVE = "/api/mutation"


def note_call(path: str, marker: str) -> Any:
    if path == REACTIVE:
        body = {"path": "testapp:add_note", "args": [{"body": marker}]}
    else:
        body = {"args": {"body": marker}}

    def call(client: Client) -> str:
        status, reply = client.post(path, body)
        if status == 200 and isinstance(reply, dict) and reply.get("status") == "success":
            return "ok"
        return f"http_{status}"

    return call


def measure(url: str, clients: int, seconds: float, slice_s: float, marker: str) -> dict[str, Any]:
    pool = [Client(url) for _ in range(clients)]
    calls = {name: note_call(name, marker) for name in (REACTIVE, PLAIN)}
    runs = {REACTIVE: Run(), PLAIN: Run()}
    warm = {name: load(pool, min(2.0, seconds), call) for name, call in calls.items()}
    slices = max(1, round(seconds / slice_s))
    for i in range(slices):
        order = (REACTIVE, PLAIN) if i % 2 == 0 else (PLAIN, REACTIVE)
        for name in order:
            runs[name].add(load(pool, seconds / slices, calls[name]))
        log(f"clients={clients} slice {i + 1}/{slices}: "
            f"reactive={runs[REACTIVE].rate()} plain={runs[PLAIN].rate()} req/s")
    for client in pool:
        client.close()
    reactive, plain = runs[REACTIVE], runs[PLAIN]
    everything = [*warm.values(), reactive, plain]
    return {
        "reactive_rps": reactive.rate(),
        "plain_rps": plain.rate(),
        "ratio": round(reactive.rate() / plain.rate(), 3) if plain.rate() else None,
        "reactive_p50_ms": reactive.ms(50),
        "reactive_p99_ms": reactive.ms(99),
        "plain_p50_ms": plain.ms(50),
        "plain_p99_ms": plain.ms(99),
        "_ok": sum(run.ok for run in everything),
        "_errors": sum(sum(run.outcomes.values()) - run.ok for run in everything),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per side per level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--slice", type=float, default=2.0, help="seconds per alternation slice")
    parser.add_argument("--pool", action="store_true",
                        help="serve with Django's psycopg connection pool (OPTIONS pool=True)")
    options = parser.parse_args()

    marker = f"bench-{uuid.uuid4().hex[:12]}"
    results: dict[str, Any] = {}
    with database() as db_url, live_server(db_url, pool=options.pool) as server:
        for clients in options.clients:
            log(f"measuring with {clients} client(s)")
            results[str(clients)] = measure(
                server.url, clients, options.duration, options.slice, marker
            )
        log_text = server.log_path.read_text(errors="replace")
        notes = sql(db_url, "SELECT count(*) FROM testapp_note WHERE body = %s", (marker,))

    expected = sum(level.pop("_ok") for level in results.values())
    errors = sum(level.pop("_errors") for level in results.values())
    emit({
        "benchmark": "mutation_throughput",
        "clients": results,
        "errors": errors,
        "server_log_errors": log_text.count("Traceback"),
        "notes_expected": expected,
        "notes_found": notes,
        "notes_match": notes == expected,
        "server": "uvicorn",
        "db_pool": options.pool,
        "duration_s": options.duration,
    })


if __name__ == "__main__":
    main()
