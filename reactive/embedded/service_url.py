"""Where settings find the servers: ``DATABASE_URL``/``REDIS_URL``, else the embedded servers
that ``manage.py reactive_dev`` started and recorded in ``<state dir>/services.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url

SERVICES_FILE = "services.json"
ENGINE = "reactive.embedded.backend"  # PostgreSQL that reports a stopped server at once
DEFAULT_DATABASE_NAME = "reactive"


def database(state_dir: Path, *, pool_size: int = 20) -> dict[str, Any]:
    """A ``DATABASES['default']`` dict for ``DATABASE_URL`` or the embedded Postgres.

    Without either, it points at the embedded server's recorded (or default) address, so
    commands fail with "connection refused" until ``make run`` has started it. Connections are
    pooled (psycopg's pool, Django 5.1+): under ASGI every request runs in a new thread, so
    without a pool each one would open a connection of its own. ``pool_size`` 0 turns it off.
    The engine is Django's PostgreSQL backend with one addition: a stopped server fails a query
    in about a second with the hint to start it, rather than after the pool's 30 s wait, both
    before the pool has connected and after (``reactive.embedded.backend``). With a pool,
    ``CONN_HEALTH_CHECKS`` is on, so a connection the server closed is not handed out.
    """
    url = os.environ.get("DATABASE_URL") or _recorded(state_dir).get("database_url")
    url = url or f"postgresql://postgres@127.0.0.1:54329/{DEFAULT_DATABASE_NAME}"
    config: dict[str, Any] = dict(dj_database_url.parse(url))
    config["ENGINE"] = ENGINE
    if pool_size:
        options: dict[str, Any] = dict(config.get("OPTIONS") or {})
        options["pool"] = {"min_size": 1, "max_size": pool_size, "timeout": 30}
        config["OPTIONS"] = options
        config["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection before lending it
    return config


def redis(state_dir: Path) -> str:
    """``REDIS_URL``, or the embedded Redis's recorded (or default) address."""
    url = os.environ.get("REDIS_URL") or _recorded(state_dir).get("redis_url")
    return str(url or "redis://127.0.0.1:63799/0")


def record(state_dir: Path, **urls: str) -> None:
    """Write the running servers' URLs for settings modules of other processes to read."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SERVICES_FILE
    path.write_text(json.dumps({**_recorded(state_dir), **urls}, indent=2))


def _recorded(state_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((Path(state_dir) / SERVICES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
