"""Contention: random bank transfers (mutation testapp:transfer) between a few accounts from
many concurrent clients over the HTTP API, on one live uvicorn process.

Counts commits/s, refusals (insufficient funds), conflict failures after the last attempt and
retries per commit (the server's "mutation retry" log lines); checks that money is conserved.
The baseline, run first, is one client for a third of the duration: ``ratio`` shows scaling.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from _common import Client, database, emit, live_server, load, log, sql

ACCOUNTS = [f"bench-{i}" for i in range(10)]
OPENING_BALANCE = 1000
RETRY = re.compile(r"mutation retry function=testapp:transfer .*sqlstate=(\w+)")


def transfer(client: Client) -> str:
    source, target = random.sample(ACCOUNTS, 2)
    args = {"source": source, "target": target, "amount": random.randint(1, 200)}
    status, reply = client.post("/api/mutation", {"path": "testapp:transfer", "args": [args]})
    if status != 200 or not isinstance(reply, dict):
        return f"http_{status}"
    if reply.get("status") == "success":
        return "ok"
    if (reply.get("errorData") or {}).get("code") == "INSUFFICIENT_FUNDS":
        return "refused_insufficient"
    if "conflicted" in reply.get("errorMessage", ""):
        return "conflict_failure"
    return "error"


def open_accounts(db_url: str) -> int:
    sql(db_url, "DELETE FROM testapp_account WHERE name LIKE %s", ("bench-%",))
    for name in ACCOUNTS:
        sql(db_url, "INSERT INTO testapp_account (name, balance) VALUES (%s, %s)",
            (name, OPENING_BALANCE))
    return total(db_url)


def total(db_url: str) -> int:
    query = "SELECT sum(balance) FROM testapp_account WHERE name LIKE %s"
    return int(sql(db_url, query, ("bench-%",)))


def phase(url: str, log_path: Path, clients: int, seconds: float) -> dict[str, Any]:
    """One load phase; retries are the server log's retry lines written during it."""
    before = len(retry_states(log_path))
    pool = [Client(url) for _ in range(clients)]
    run = load(pool, seconds, transfer)
    for client in pool:
        client.close()
    retries = retry_states(log_path)[before:]
    by_state = dict(Counter(retries))
    log(f"clients={clients}: {run.rate()} transfers/s, outcomes={run.outcomes}, "
        f"retries={by_state}")
    return {
        "rate": run.rate(), "commits": run.ok, "retries": len(retries), "by_state": by_state,
        **run.outcomes,
    }


def retry_states(log_path: Path) -> list[str]:
    """The SQLSTATE of every transfer retry the server has logged so far, in order."""
    return RETRY.findall(log_path.read_text(errors="replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the main phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pool", action="store_true",
                        help="serve with Django's psycopg connection pool (OPTIONS pool=True)")
    options = parser.parse_args()

    with database() as db_url, live_server(db_url, pool=options.pool) as server:
        before = open_accounts(db_url)
        load([Client(server.url)], 1.0, transfer)  # warm-up: imports, first connections
        single = phase(server.url, server.log_path, 1, options.duration / 3)
        many = phase(server.url, server.log_path, options.clients, options.duration)
        after = total(db_url)

    emit({
        "benchmark": "contention",
        "clients": options.clients,
        "transfers_per_s": many["rate"],
        "single_client_transfers_per_s": single["rate"],
        "ratio": round(many["rate"] / single["rate"], 3) if single["rate"] else None,
        "commits": many["commits"],
        "retries": many["retries"],
        "retries_per_commit": round(many["retries"] / max(1, many["commits"]), 3),
        "retries_by_sqlstate": many["by_state"],
        "single_client_retries": single["retries"],
        "conflict_failures": many.get("conflict_failure", 0),
        "refused_insufficient": many.get("refused_insufficient", 0),
        "other_errors": sum(v for k, v in many.items() if k.startswith(("http_", "error"))),
        "total_before": before,
        "total_after": after,
        "conserved": before == after,
        "server": "uvicorn",
        "db_pool": options.pool,
        "duration_s": options.duration,
    })


if __name__ == "__main__":
    main()
