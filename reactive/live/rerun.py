"""Re-running a round's queries, on several connections at once when there are many: each helper
imports the round's snapshot (``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``), so every
result still belongs to the one snapshot the round reads the log at."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import DEFAULT_DB_ALIAS, connections

from reactive.conf import reactive_settings
from reactive.exceptions import QueryTimeout
from reactive.functions.runtime import Call, Evaluation, Runtime
from reactive.functions.snapshots import export_snapshot, run_snapshot
from reactive.live.subscriptions import QueryEntry

logger = logging.getLogger(__name__)

# Fewer re-runs than this stay on the round's own connection: a hand-off costs more.
MIN_CONCURRENT = 8
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?$")

Evaluated = list[tuple[QueryEntry, Evaluation]]


class RoundAborted(Exception):
    """The round's connection or transaction broke; the round is retried as a whole."""


def spoiled() -> bool:
    """Whether this thread's transaction can no longer commit (a savepoint could not be rolled
    back, or the connection is gone): then per-query errors are the connection's, not the
    queries'."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    raw = wrapper.connection
    return bool(wrapper.needs_rollback or raw is None or raw.closed)


class Rerunner:
    """Evaluates queries for the round thread; ``connections`` in all, the round's included.

    Helpers only evaluate: the round thread applies every result (read sets, digests), so the
    bookkeeping stays single-threaded. A helper that fails fails the round, which then
    re-runs everything (as for any failed round).
    """

    def __init__(self, functions: Runtime, connections_total: int = 1) -> None:
        self.runtime = functions
        self.helpers = max(0, connections_total - 1)
        # One thread per helper: each keeps its own connection from round to round.
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix="reactive-rerun")
                         for _ in range(self.helpers)]

    def evaluate(self, entries: list[QueryEntry]) -> Evaluated:
        if not self._threads or len(entries) < MIN_CONCURRENT:
            return [(entry, self._one(entry)) for entry in entries]
        snapshot = export_snapshot()
        # Interleaved, so that each share gets some of every kind of query.
        shares = [entries[i::self.helpers + 1] for i in range(self.helpers + 1)]
        futures = [thread.submit(self._helper, str(snapshot), share)
                   for thread, share in zip(self._threads, shares[1:], strict=True) if share]
        done = [(entry, self._one(entry)) for entry in shares[0]]
        failure: BaseException | None = None
        for future in futures:  # wait for all before the round's snapshot may go away
            try:
                done += future.result()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return done

    def shutdown(self) -> None:
        """Close the helpers' connections and stop their threads."""
        for thread in self._threads:
            thread.submit(self._close).result()
            thread.shutdown(wait=True)
        self._threads = []

    def _close(self) -> None:
        connections[DEFAULT_DB_ALIAS].close()  # this thread's connection

    def _one(self, entry: QueryEntry) -> Evaluation:
        started = time.monotonic()
        evaluation = self.runtime.evaluate(Call(entry.path, entry.args, entry.identity,
                                                journal=entry.journal_in))
        took, limit = time.monotonic() - started, reactive_settings().QUERY_STATEMENT_TIMEOUT
        if limit is not None and took > limit and evaluation.outcome.code != QueryTimeout.code:
            # The limit stops a query at its SQL statements, not in Python after the last
            # one: say which query kept every other live query of the process waiting (one
            # stopped by the limit was logged as the query's failure already).
            logger.warning("live query held its round for %.1f s function=%s; the process's "
                           "other live queries waited for it (QUERY_STATEMENT_TIMEOUT, %g s, "
                           "stops a query at its SQL statements, not in Python)", took,
                           entry.path, limit)
        return evaluation

    def _helper(self, snapshot: str, share: list[QueryEntry]) -> Evaluated:
        if not _SNAPSHOT_ID.match(snapshot):
            raise ValueError(f"unexpected snapshot id {snapshot!r}")

        def run(cursor: object) -> Evaluated:
            done = []
            for entry in share:
                done.append((entry, self._one(entry)))
                if spoiled():  # else the rollback at the end would hide it, and the errors
                    raise RoundAborted(f"a re-run connection failed during {entry.path}")
            return done

        try:
            # Right after BEGIN, before any query: the transaction sees exactly the round's data.
            return run_snapshot(run, f"SET TRANSACTION SNAPSHOT '{snapshot}'",
                                function="<reactor re-run>")
        except Exception:
            connections[DEFAULT_DB_ALIAS].close()  # reopened by this thread's next share
            raise

