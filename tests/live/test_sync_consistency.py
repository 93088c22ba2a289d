"""G3 consistent views and G5 no missed updates, under concurrent writers.

Eight threads move money between accounts with the ``testapp:transfer`` mutation while a
protocol-level client holds one subscription per account balance. Half run it in this process
(``runtime.run``: SERIALIZABLE transactions on the test database, genuine conflicts and
retries), half through the live server's ``/api/mutation``, the process whose Reactor serves
the client. Each Transition it receives
is applied to its view, and the view must always add up to the constant total: a torn state
(one side of a transfer without the other) would break the sum.

It runs against the test project as documented (``sync_websocket``, no channel layer) and as a
standard Channels project has it: the sync endpoint below ``AuthMiddlewareStack(URLRouter(
...))`` with channels-redis configured exactly as its README writes it (host tuples,
``socket_timeout`` at its default).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.db import connection

from reactive import FunctionError, values
from reactive.exceptions import ConflictError
from reactive.functions.runtime import in_thread, runtime
from tests.support.servers import serving
from tests.support.syncclient import SyncClient
from tests.testapp.models import Account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ACCOUNTS = 6
OPENING_BALANCE = 1_000
WRITERS = 8
DURATION = 10.0  # at least; longer (up to MAX_DURATION) on a slow machine, until
MAX_DURATION = 30.0
ENOUGH = 50  # Transitions with updates have been checked
ENOUGH_WRITES = 100  # and transfers committed


class Writers:
    """``count`` threads running random transfers until ``stop()``; odd ones over HTTP."""

    def __init__(self, names: list[str], count: int, url: str) -> None:
        self.names = names
        self.url = url
        self.stopping = threading.Event()
        self.committed = 0
        self.refused = 0  # overdrafts: FunctionError, nothing written
        self.gave_up = 0  # conflicts past MUTATION_MAX_ATTEMPTS: rolled back
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(seed,), daemon=True)
                         for seed in range(count)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()

    @property
    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        transfer = self._transfer_over_http if seed % 2 else self._transfer
        try:
            while not self.stopping.is_set():
                source, target = rng.sample(self.names, 2)
                outcome = transfer(source, target, rng.randint(1, 300))
                with self._lock:
                    setattr(self, outcome, getattr(self, outcome) + 1)
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.failures.append(exc)
        finally:
            connection.close()

    def _transfer(self, source: str, target: str, amount: int) -> str:
        try:
            runtime.run("testapp:transfer", {"source": source, "target": target,
                                             "amount": amount})
        except FunctionError:
            return "refused"
        except ConflictError:
            return "gave_up"
        return "committed"

    def _transfer_over_http(self, source: str, target: str, amount: int) -> str:
        response = requests.post(f"{self.url}/api/mutation", timeout=30, json={
            "path": "testapp:transfer", "format": "json",
            "args": {"source": source, "target": target, "amount": amount}})
        body = response.json()
        if body.get("status") == "success":
            return "committed"
        data = body.get("errorData") or {}
        if data.get("code") == "INSUFFICIENT_FUNDS":
            return "refused"
        if body.get("errorMessage", "").startswith("Mutation 'testapp:transfer' conflicted"):
            return "gave_up"
        raise AssertionError(body)


@pytest.fixture(scope="module")
def standard_channels_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    """The test project routed by Channels, with channels-redis as its README configures it."""
    with serving(test_database_url, redis_url, DJANGO_SETTINGS_MODULE="tests.settings_channels",
                 REACTIVE_TEST_CHANNEL_LAYER="redis-hosts",
                 REACTIVE_TEST_ROUTING="channels") as server:
        yield server.url


@pytest.fixture(params=["sync_websocket", "channels-redis"])
def server_url(request: pytest.FixtureRequest) -> str:
    fixture = "live_server_url" if request.param == "sync_websocket" else "standard_channels_url"
    return str(request.getfixturevalue(fixture))


async def test_every_transition_shows_balances_summing_to_the_total(server_url: str) -> None:
    live_server_url = server_url
    # Given accounts holding a known total, and one subscription per balance
    names = [f"account-{i}" for i in range(ACCOUNTS)]
    await in_thread(Account.objects.bulk_create,
                    [Account(name=name, balance=OPENING_BALANCE) for name in names])
    total = OPENING_BALANCE * ACCOUNTS
    async with SyncClient(live_server_url) as client:
        queries = list(range(ACCOUNTS))
        checked: list[int] = []
        torn: list[Any] = []

        def check(transition: dict[str, Any]) -> None:
            if client.errors:
                torn.append(("error", client.errors))
            if all(q in client.results for q in queries):
                view = [client.results[q] for q in queries]
                checked.append(len(transition["modifications"]))
                if sum(view) != total:
                    torn.append((transition["endVersion"], view))

        client.on_transition = check
        await client.modify([
            {"type": "Add", "queryId": q, "udfPath": "testapp:balance",
             "args": [values.encode({"name": name})]} for q, name in zip(queries, names,
                                                                           strict=True)])
        await client.wait_for(lambda: all(q in client.results for q in queries))
        assert checked, "the first Transition must carry every balance at once"

        # When eight writers transfer money at random for a while
        writers = Writers(names, WRITERS, live_server_url)
        writers.start()
        started = time.monotonic()

        def finished() -> bool:
            ran = time.monotonic() - started
            if ran >= MAX_DURATION or (ran >= DURATION and sum(map(bool, checked)) >= ENOUGH
                                       and writers.committed >= ENOUGH_WRITES):
                writers.stop()
            return writers.done

        await client.wait_for(finished, MAX_DURATION + 30)
        elapsed = time.monotonic() - started
        assert not writers.failures, writers.failures

        # Then the view converges to the database (G5)...
        final = await in_thread(lambda: dict(Account.objects.values_list("name", "balance")))
        assert sum(final.values()) == total
        expected = [final[name] for name in names]
        await client.wait_for(lambda: [client.results[q] for q in queries] == expected, 15)

    # ...and no Transition ever showed a torn state (G3), over many checked Transitions.
    assert torn == [], torn[:5]
    updates = [n for n in checked if n]
    assert writers.committed >= ENOUGH_WRITES, vars(writers)
    assert len(updates) >= ENOUGH, (len(checked), vars(writers))
    print(f"\n{len(checked)} transitions checked ({len(updates)} with updates) in "
          f"{elapsed:.1f}s; committed={writers.committed} refused={writers.refused} "
          f"gave_up={writers.gave_up}")
