"""Session fixtures: real Postgres and Redis servers, Django wired to them in place, a live
ASGI server, and the Node client runner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import pytest
from django.conf import settings

from tests.support import servers

pytest_plugins = ["tests.support.fixtures_celery"]

JS_DIR = Path(__file__).parent / "js"

# A shell that starts `make test` as a background job (`make test &`) ignores SIGINT, and an
# ignored signal stays ignored in every child: the tests that press Ctrl-C on reactive_dev or
# reactive_migrations would then wait in vain. Children get the default handling back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with servers.postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with servers.redis() as url:
        yield url


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_url: str) -> None:
    """Point the default connection at the private server, updating the dict in place
    (connections share it)."""
    parsed = dj_database_url.parse(postgres_url)
    settings.DATABASES["default"].update(
        {key: parsed[key] for key in ("HOST", "PORT", "USER", "PASSWORD", "NAME")}  # type: ignore[literal-required]
    )


@pytest.fixture(scope="session")
def test_database_url(django_db_setup: None, postgres_url: str) -> str:
    """The URL of the test database pytest-django created (for server processes)."""
    from django.db import connection

    base = postgres_url.rsplit("/", 1)[0]
    return f"{base}/{connection.settings_dict['NAME']}"


@pytest.fixture(scope="session")
def live_server_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    """A real ASGI server (uvicorn) serving tests.asgi on the test database."""
    server = servers.AsgiServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_url})
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def storage_server(test_database_url: str, redis_url: str) -> Iterator[servers.AsgiServer]:
    """A live ASGI server with tests.settings_storage: absolute storage URLs pointing at
    itself, the test process's MEDIA_ROOT, no error details."""
    server = servers.AsgiServer({
        "DATABASE_URL": test_database_url, "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "tests.settings_storage",
        "REACTIVE_TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
    })
    server.start()
    yield server
    server.stop()


@pytest.fixture
def storage_server_url(storage_server: servers.AsgiServer) -> str:
    return storage_server.url


@pytest.fixture
def storage_server_pid(storage_server: servers.AsgiServer) -> int:
    return storage_server.pid


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("Node.js is not installed: apt-get install nodejs (Node 20+).")
    if not (JS_DIR / "node_modules" / "convex").is_dir():
        pytest.fail(f"The npm 'convex' package is missing: run 'npm ci --prefix {JS_DIR}'.")
    return path


class NodeClient:
    """Runs a script from tests/js with the official npm client against a server URL."""

    def __init__(self, node: str) -> None:
        self.node = node

    def run(self, script: str, url: str, payload: Any = None, timeout: float = 60) -> Any:
        env = {**os.environ, "SERVER_URL": url, "PAYLOAD": json.dumps(payload)}
        done = subprocess.run(
            [self.node, str(JS_DIR / script)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=JS_DIR,
        )
        if done.returncode != 0:
            raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def node_client(node: str) -> NodeClient:
    return NodeClient(node)
