"""Serializable mutations with genuine conflicts from real concurrent connections."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.db import connection

from reactive import FunctionError
from reactive.exceptions import ConflictError
from reactive.functions.runtime import Call, runtime
from reactive.functions.transaction import backoff
from tests.testapp import hooks
from tests.testapp.models import Account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def hook() -> Iterator[None]:
    yield
    hooks.between_read_and_write = None


def _in_thread(fn: Any, *args: Any) -> Any:
    from django.db import connections

    try:
        return fn(*args)
    finally:
        connections.close_all()


def test_write_skew_is_retried_and_only_one_leaves(
    hook: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two doctors on call, and both transactions read before either writes
    Account.objects.bulk_create([Account(name="alice", balance=1), Account(name="bob", balance=1)])
    barrier = threading.Barrier(2, timeout=10)
    calls: list[str] = []

    def rendezvous() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) <= 2:  # only the first attempts meet; a retry runs alone
            barrier.wait()

    hooks.between_read_and_write = rendezvous

    def leave(name: str) -> Any:
        try:
            return runtime.run("testapp:go_off_call", {"name": name})
        except FunctionError as exc:
            return exc.data

    # When both go off call at the same time
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: _in_thread(leave, n), ["alice", "bob"]))

    # Then one commits, the other is retried, sees one doctor left and is refused
    assert sorted(map(str, results)) == ["1", "{'code': 'LAST_ON_CALL'}"]
    assert Account.objects.filter(balance=1).count() == 1
    assert len(calls) == 3  # two first attempts + one retry
    assert "mutation retry function=testapp:go_off_call attempt=1 sqlstate=40001" in caplog.text


def test_mutation_that_always_conflicts_ends_with_conflict_error(
    hook: None, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a writer on another connection that commits between our read and our write
    settings.REACTIVE = {**settings.REACTIVE, "MUTATION_MAX_ATTEMPTS": 3}
    Account.objects.create(name="hot", balance=0)
    dsn = _dsn()
    attempts: list[int] = []

    def interfere() -> None:
        attempts.append(1)
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("UPDATE testapp_account SET balance = balance + 100 WHERE name = 'hot'")

    hooks.between_read_and_write = interfere

    # When
    with pytest.raises(ConflictError) as info:
        runtime.run("testapp:bump", {"name": "hot"})

    # Then every attempt lost, and the error says which function, how often and why
    assert info.value.attempts == 3 and len(attempts) == 3
    assert info.value.sqlstate == "40001"
    assert "testapp:bump" in str(info.value) and "MUTATION_MAX_ATTEMPTS" in str(info.value)
    assert caplog.text.count("mutation retry function=testapp:bump") == 2
    assert Account.objects.get(name="hot").balance == 300  # only the interfering writes landed


def test_conflict_error_reaches_clients_as_an_error_outcome(hook: None, settings: Any) -> None:
    settings.REACTIVE = {**settings.REACTIVE, "MUTATION_MAX_ATTEMPTS": 1}
    Account.objects.create(name="hot", balance=0)
    dsn = _dsn()

    def interfere() -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("UPDATE testapp_account SET balance = 7 WHERE name = 'hot'")

    hooks.between_read_and_write = interfere
    outcome = runtime.call(Call("testapp:bump", {"name": "hot"}))
    assert not outcome.ok
    assert outcome.code == "OptimisticConcurrencyControlFailure"
    assert "conflicted with concurrent writes on all 1 attempts (SQLSTATE 40001)" in str(
        outcome.error
    )


def test_concurrent_transfers_conserve_the_total() -> None:
    # Given 5 accounts holding 500 in total
    Account.objects.bulk_create([Account(name=f"a{i}", balance=100) for i in range(5)])

    def transfers(seed: int) -> int:
        import random

        rng = random.Random(seed)
        done = 0
        for _ in range(25):
            a, b = rng.sample(range(5), 2)
            try:
                runtime.run("testapp:transfer",
                            {"source": f"a{a}", "target": f"a{b}", "amount": rng.randint(1, 60)})
                done += 1
            except (FunctionError, ConflictError):
                pass  # refused for funds, or lost every race under load: both leave no trace
        return done

    # When 4 threads transfer concurrently
    with ThreadPoolExecutor(4) as pool:
        done = sum(pool.map(lambda s: _in_thread(transfers, s), range(4)))

    # Then nothing was lost or created
    assert done > 0
    assert sum(Account.objects.values_list("balance", flat=True)) == 500
    assert runtime.run("testapp:total_balance") == 500


def test_backoff_is_capped_and_jittered(settings: Any) -> None:
    settings.REACTIVE = {**settings.REACTIVE, "MUTATION_RETRY_BASE_DELAY": 0.01,
                         "MUTATION_RETRY_MAX_DELAY": 0.04}
    samples = [backoff(attempt) for attempt in range(1, 10) for _ in range(20)]
    assert all(0 <= s <= 0.04 for s in samples)
    assert len(set(samples)) > 100
    assert max(backoff(1) for _ in range(50)) <= 0.01


def _dsn() -> str:
    params = connection.get_connection_params()
    return (f"host={params['host']} port={params['port']} user={params['user']} "
            f"dbname={params['dbname']}")
