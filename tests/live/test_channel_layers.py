"""Live queries work whatever CHANNEL_LAYERS says: none, Channels' in-memory layer, channels-redis
configured as its README does (host tuples, a URL string, ``socket_timeout`` at its default),
even a layer at a wrong address. The sync consumer never opens a layer receive; with
channels-redis it used to, and every session that heard nothing from the layer for 5 s was
closed with 1011."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.servers import AsgiServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

LAYERS = ["none", "memory", "redis-hosts", "redis-url", "redis-unreachable"]
IDLE_MS = 30_000  # six times channels-redis's 5 s blocking read
CLIENTS = 3


@pytest.fixture(scope="module")
def servers(test_database_url: str, redis_url: str) -> Iterator[dict[str, AsgiServer]]:
    started = {layer: AsgiServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_url,
                                  "DJANGO_SETTINGS_MODULE": "tests.settings_channels",
                                  "REACTIVE_TEST_CHANNEL_LAYER": layer})
               for layer in LAYERS}
    with ThreadPoolExecutor(len(started)) as pool:
        list(pool.map(lambda s: s.start(), started.values()))
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_sessions_idle_30s_then_updated_under_every_channel_layer_setting(
    servers: dict[str, AsgiServer], node_client: Any,
) -> None:
    # Given npm clients subscribed on a server per CHANNEL_LAYERS setting, all idle for 30 s,
    # when one client per server then writes (all servers run at once, to keep the wait one)
    def scenario(layer: str) -> Any:
        payload = {"scenario": "idleThenUpdate", "clients": CLIENTS, "idleMs": IDLE_MS,
                   "body": f"after idling under {layer} {uuid.uuid4().hex}"}
        return node_client.run("sync_client.mjs", servers[layer].url, payload,
                               timeout=IDLE_MS / 1000 + 90)

    with ThreadPoolExecutor(len(LAYERS)) as pool:
        results = dict(zip(LAYERS, pool.map(scenario, LAYERS), strict=True))

    # Then every session saw the write on the connection it opened first: none was closed
    for layer, result in results.items():
        first = [{"count": 1, "retries": 0}] * CLIENTS
        assert result["afterIdle"] == first, (layer, result)
        assert result["final"] == first, (layer, result)
    # And no server logged a failure (the old symptom: redis TimeoutError, close 1011)
    for layer, server in servers.items():
        log = server.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "TimeoutError" not in log, (layer, log[-3000:])
