"""Genuine serialization failures for the metrics tests: threads moving money both ways
between two accounts at once, through the runtime (SERIALIZABLE mutations that retry)."""

from __future__ import annotations

import threading

from django.db import connection

from reactive.functions.runtime import Call, runtime
from tests.testapp.models import Account


def race_transfers(transfers_per_thread: int, threads: int = 4) -> None:
    """Create accounts ``a`` and ``b`` (1000 each), then race ``threads`` threads moving one
    unit at a time, half a → b and half b → a."""
    Account.objects.create(name="a", balance=1000)
    Account.objects.create(name="b", balance=1000)

    def worker(n: int) -> None:
        try:
            source, target = ("b", "a") if n % 2 else ("a", "b")
            for _ in range(transfers_per_thread):
                runtime.call(Call("testapp:transfer",
                                  {"source": source, "target": target, "amount": 1}))
        finally:
            connection.close()

    running = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=60)
