"""Django's PostgreSQL backend, except that a stopped server is reported in seconds, naming the
fix, instead of after the connection pool's wait (30 s of "connection refused" lines): before
the pool has connected once, and after, when the server goes away under a running process."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import OperationalError
from psycopg_pool import ConnectionPool, PoolTimeout

# Kept here, not imported from reactive.probe: the development servers stand alone.
DOWN_HINT = (
    "Start the development stack in another terminal: python manage.py reactive_dev (it starts "
    "PostgreSQL and Redis and records their addresses), or start your own PostgreSQL and set "
    "DATABASES['default'] (or DATABASE_URL) in settings.py to its address."
)
PROBE_TIMEOUT = 3  # seconds; a refused connection fails at once, an unrouted address waits
POOL_FIRST_WAIT = 1.0  # seconds a connected pool gets before the server itself is tried
BUSY_SQLSTATE_CLASS = "53"  # insufficient resources (too many clients): the server answers


class DatabaseUnreachable(OperationalError):
    """The server did not answer a direct connection; the message names the fix.

    ``database_unreachable`` lets layers that may not import this module (the function
    runtime) log it as one line instead of a traceback.
    """

    database_unreachable = True


class FailFastPool(ConnectionPool):
    """psycopg's pool, whose ``getconn`` tries the server directly when a pool that has
    connected before has no connection to give within ``POOL_FIRST_WAIT``: a server that went
    away fails at once; a busy pool (the server answers) waits out the rest of the timeout.

    Django builds the pool itself (``DatabaseWrapper.pool``); the wrapper turns it into this
    class and sets ``probe``.
    """

    probe: Any = None  # a callable raising DatabaseUnreachable, set by the wrapper
    proven = False  # whether it has handed out a connection once

    def getconn(self, timeout: float | None = None) -> Any:
        total = self.timeout if timeout is None else timeout
        if not self.proven:  # the wrapper probed before opening the pool
            connection = super().getconn(total)
            self.proven = True
            return connection
        try:
            return super().getconn(min(POOL_FIRST_WAIT, total))
        except PoolTimeout:
            if total <= POOL_FIRST_WAIT:
                raise
        self.probe()
        return super().getconn(total - POOL_FIRST_WAIT)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool
        if pool is not None and not isinstance(pool, FailFastPool):
            params = self.get_connection_params()
            pool.__class__ = FailFastPool  # the same object: Django keeps one per alias
            pool.probe = lambda: probe(params)
        return pool

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self.pool
        if pool is not None and not pool.proven:
            # Before Django opens the pool: its workers would log every refused attempt
            probe(conn_params)
        return super().get_new_connection(conn_params)


def probe(conn_params: dict[str, Any]) -> None:
    """Connect once outside the pool, with a short timeout; raise ``DatabaseUnreachable`` (with
    the hint) when the server does not answer. A server that refuses for lack of resources
    (too many clients) does answer: the pool's own wait applies then."""
    params = {**conn_params, "connect_timeout": PROBE_TIMEOUT}
    try:
        psycopg.connect(**params).close()
    except OperationalError as exc:
        if (exc.sqlstate or "").startswith(BUSY_SQLSTATE_CLASS):
            return
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        where = f"{conn_params.get('host') or 'localhost'}:{conn_params.get('port') or 5432}"
        raise DatabaseUnreachable(
            f"The database {conn_params.get('dbname')!r} at {where} cannot be reached: "
            f"{first}. {DOWN_HINT}") from None
