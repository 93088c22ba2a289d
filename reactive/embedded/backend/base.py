"""Django's PostgreSQL backend, except that a connection pool that has never connected tries the
server directly first: a stopped server fails the first query in about a second, naming the fix,
instead of after the pool's wait (30 s of "connection refused" lines)."""

from __future__ import annotations

import threading
from typing import Any

from django.db.backends.postgresql import base

# Kept here, not imported from reactive.probe: the development servers stand alone.
DOWN_HINT = (
    "Start the development stack in another terminal: python manage.py reactive_dev (it starts "
    "PostgreSQL and Redis and records their addresses), or start your own PostgreSQL and set "
    "DATABASES['default'] (or DATABASE_URL) in settings.py to its address."
)
PROBE_TIMEOUT = 3  # seconds; a refused connection fails at once, an unrouted address waits
_proven: set[int] = set()  # ids of pools that have handed out a connection
_lock = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self.pool
        if pool is not None and id(pool) not in _proven:
            self._probe(conn_params)
        connection = super().get_new_connection(conn_params)
        if pool is not None:
            with _lock:
                _proven.add(id(pool))
        return connection

    def _probe(self, conn_params: dict[str, Any]) -> None:
        """Connect once outside the pool, with a short timeout; raise OperationalError (with
        the hint) when the server does not answer."""
        params = {**conn_params, "connect_timeout": PROBE_TIMEOUT}
        try:
            self.Database.connect(**params).close()
        except self.Database.OperationalError as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            where = f"{conn_params.get('host') or 'localhost'}:{conn_params.get('port') or 5432}"
            raise self.Database.OperationalError(
                f"The database {conn_params.get('dbname')!r} at {where} cannot be reached: "
                f"{first}. {DOWN_HINT}") from None
