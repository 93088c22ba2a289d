"""Private PostgreSQL and Redis servers run as child processes, for `make run` and tests."""

from __future__ import annotations

from reactive.embedded.postgres import PostgresServer
from reactive.embedded.redis import RedisServer

__all__ = ["PostgresServer", "RedisServer"]
