"""Live search: re-runs per write, push latency, search and nearest-neighbour latency.

``--docs`` passages (random common words; every 5th also carries one of ``--subs`` rare terms
``termN``; a random ``--dims`` unit embedding each), GIN and HNSW indexes. ``--subs`` live
searches, one distinct term each, over ``--sessions`` sessions. ``--writes`` inserts, each
carrying one random subscribed term: the server's re-runs per write (aim: 1, the one search
whose term it contains) and commit->push latency. Baseline in the same run: ``--wide-subs``
searches written so the read-set analysis cannot follow them (the whole-table dependency all
searches had before), ``--wide-writes`` writes. Then search latency through ``/api/query``
against the same SQL run directly, vector top-10 through ``/api/query`` (HNSW) against raw
SQL, and the commit->push latency of a nearest-neighbour subscription when a closer row
arrives (and whether a far row re-runs it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import psycopg
from _common import Client, database, emit, live_server, log, percentile
from _live import Session, close_sessions, delta, latency_summary, open_sessions, reactor_stats
from _live import wait_until as until

PRECISE, WIDE = "testapp/bench:search_passages", "testapp/bench:search_passages_wide"
SIMILAR = "testapp/bench:similar_passages"


def seed(db_url: str, docs: int, subs: int, dims: int) -> None:
    log(f"seeding {docs} passages x {dims} dims")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(
            "INSERT INTO testapp_passage (body, embedding) SELECT "
            "(SELECT string_agg('w' || (random() * 500)::int, ' ') FROM generate_series(1, 8) "
            " WHERE g > 0) || CASE WHEN g %% 5 = 0 THEN ' term' || ((g / 5) %% %s) ELSE '' END, "
            "(SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, %s) WHERE g > 0) "
            "FROM generate_series(1, %s) g", (subs, dims, docs))
        conn.execute("ANALYZE testapp_passage")


async def searches(base_url: str, db_url: str, path: str, subs: int, sessions_n: int,
                   writes: int) -> dict[str, Any]:
    """Subscribe ``subs`` searches (term0..), write ``writes`` passages each with one term."""
    arrivals: dict[str, float] = {}

    def on_update(session: Session, query_id: int, value: Any, arrived: float) -> None:
        arrivals.setdefault(f"{id(session)}:{query_id}:{len(value)}", arrived)

    sessions = await open_sessions(base_url, sessions_n, on_update)
    share = -(-subs // sessions_n)
    owner: dict[int, tuple[Session, int]] = {}
    for i, session in enumerate(sessions):
        terms = list(range(i * share, min(subs, (i + 1) * share)))
        ids = await session.subscribe_many(path, [{"text": f"term{t}", "limit": 50}
                                                  for t in terms])
        owner.update({t: (session, q) for t, q in zip(terms, ids, strict=True)})
    await until(lambda: sum(len(s.results) for s in sessions) == subs, 600, "initial results")
    await asyncio.sleep(1.0)
    loop = asyncio.get_running_loop()
    before = await loop.run_in_executor(None, reactor_stats, base_url)
    latencies = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(writes):
            term = random.randrange(subs)
            session, query_id = owner[term]
            size = len(session.results[query_id])
            conn.execute("INSERT INTO testapp_passage (body) VALUES (%s)",
                         (f"w1 w2 new{n} term{term}",))
            committed = time.perf_counter()
            key = f"{id(session)}:{query_id}:{size + 1}"
            await until(lambda key=key: key in arrivals, 120, f"push of write {n}")
            latencies.append(arrivals[key] - committed)
    await asyncio.sleep(0.5)
    after = await loop.run_in_executor(None, reactor_stats, base_url)
    await close_sessions(sessions)
    server = delta(after, before)
    return {"subscriptions": subs, "writes": writes, **server,
            "reruns_per_write": round(server["executions"] / writes, 2),
            "push": latency_summary(latencies)}


def timed(call: Any, n: int) -> float:
    """Median milliseconds of ``n`` calls."""
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return round(percentile(samples, 50) * 1000, 3)


def one_shot(base_url: str, db_url: str, dims: int, n: int) -> dict[str, Any]:
    client = Client(base_url)
    vector = [random.random() - 0.5 for _ in range(dims)]

    def query(path: str, args: dict[str, Any]) -> None:
        status, reply = client.post("/api/query", {"path": path, "args": args,
                                                   "format": "json"})
        assert status == 200 and reply["status"] == "success", reply

    with psycopg.connect(db_url, autocommit=True) as conn:
        raw_search = timed(lambda: conn.execute(
            "SELECT id, ts_rank(to_tsvector('english'::regconfig, COALESCE(body, '')), q) r "
            "FROM testapp_passage, websearch_to_tsquery('english'::regconfig, %s) q WHERE "
            "to_tsvector('english'::regconfig, COALESCE(body, '')) @@ q ORDER BY r DESC, id DESC"
            " LIMIT 10", ("term7",)).fetchall(), n)
        raw_vector = timed(lambda: conn.execute(
            "SELECT id FROM testapp_passage ORDER BY embedding <=> %s::vector LIMIT 10",
            (str(vector),)).fetchall(), n)
    result = {
        "search_ms": {"api_query": timed(lambda: query(PRECISE, {"text": "term7"}), n),
                      "raw_sql": raw_search},
        "vector_top10_ms": {"api_query": timed(lambda: query(SIMILAR, {"vector": vector}), n),
                            "raw_sql": raw_vector},
    }
    client.close()
    for kind in ("search_ms", "vector_top10_ms"):
        result[kind]["ratio"] = round(result[kind]["api_query"] / result[kind]["raw_sql"], 2)
    return result


async def nearest_live(base_url: str, db_url: str, dims: int, writes: int) -> dict[str, Any]:
    vector = [random.random() - 0.5 for _ in range(dims)]
    latest: dict[str, Any] = {}
    session = (await open_sessions(base_url, 1,
                                   lambda s, q, v, t: latest.update(value=v, at=t)))[0]
    await session.subscribe_many(SIMILAR, [{"vector": vector, "k": 10}])
    await until(lambda: "value" in latest, 60, "nearest result")
    loop = asyncio.get_running_loop()
    latencies = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = await loop.run_in_executor(None, reactor_stats, base_url)
        for _ in range(writes):  # far rows: the opposite direction, never in the top 10
            conn.execute("INSERT INTO testapp_passage (body, embedding) VALUES ('far', %s)",
                         (str([-x for x in vector]),))
        await asyncio.sleep(1.0)
        far = delta(await loop.run_in_executor(None, reactor_stats, base_url), before)
        for _ in range(writes):  # the query vector itself: always the new nearest
            new_id = conn.execute("INSERT INTO testapp_passage (body, embedding) VALUES "
                                  "('near', %s) RETURNING id", (str(vector),)).fetchone()[0]
            committed = time.perf_counter()
            await until(lambda i=new_id: i in latest["value"], 60, "nearest push")
            latencies.append(latest["at"] - committed)
    await close_sessions([session])
    return {"far_writes": writes, "far_reruns": far["executions"],
            "near_push": latency_summary(latencies)}


async def measure(options: argparse.Namespace, db_url: str, base_url: str) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "search", "docs": options.docs, "dims": options.dims}
    log(f"precise: {options.subs} searches, {options.writes} writes")
    result["precise"] = await searches(base_url, db_url, PRECISE, options.subs, options.sessions,
                                       options.writes)
    log(f"baseline: {options.wide_subs} wide searches, {options.wide_writes} writes")
    result["wide_baseline"] = await searches(base_url, db_url, WIDE, options.wide_subs,
                                             options.sessions, options.wide_writes)
    result.update(one_shot(base_url, db_url, options.dims, options.samples))
    log("nearest-neighbour subscription")
    result["nearest_live"] = await nearest_live(base_url, db_url, options.dims, 10)
    result["meets_aim"] = result["precise"]["reruns_per_write"] <= 1.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--wide-subs", type=int, default=100)
    parser.add_argument("--wide-writes", type=int, default=5)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    random.seed(options.seed)
    with database(f"reactive_bench_search_{uuid.uuid4().hex[:6]}") as db_url:
        seed(db_url, options.docs, options.subs, options.dims)
        with live_server(db_url, pool=True) as server:
            result = asyncio.run(measure(options, db_url, server.url))
    emit(result)


if __name__ == "__main__":
    main()
