"""Whether the database answers right now: one direct connection with a short timeout, so a
server that is not running is reported in seconds instead of after the pool's long wait."""

from __future__ import annotations

from django.db import connections

DOWN_HINT = (
    "Start the development stack in another terminal: python manage.py reactive_dev (it starts "
    "PostgreSQL and Redis and records their addresses), or start your own PostgreSQL and set "
    "DATABASES['default'] (or DATABASE_URL) in settings.py to its address."
)


def database_problem(alias: str = "default", timeout: int = 3) -> str | None:
    """Return why database ``alias`` cannot be reached (one sentence), or None when it answers.

    Connects outside the connection pool (whose wait is 30 s by default) with
    ``connect_timeout=timeout``; a refused connection fails at once. Non-PostgreSQL databases
    are not probed (system check ``reactive.E002`` reports them).
    """
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return None
    try:
        params = connection.get_connection_params()
    except Exception as exc:  # ImproperlyConfigured: no NAME, a name too long
        return f"DATABASES[{alias!r}] is not usable: {exc}"
    params.setdefault("connect_timeout", timeout)
    try:
        import psycopg

        raw = psycopg.connect(**params)
    except Exception as exc:  # psycopg.OperationalError in all its forms
        where = _address(connection.settings_dict)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"The database {where} cannot be reached: {first}"
    raw.close()
    return None


def _address(settings_dict: dict[str, object]) -> str:
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or 5432
    return f"'{settings_dict.get('NAME')}' at {host}:{port}"
