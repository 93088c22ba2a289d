"""Large live results with the real clients: an 8 MiB result reaches the npm client intact (as
TransitionChunks, which it joins) and the PyPI client (whole: it refuses chunks), and a
result over ``WEBSOCKET_MAX_RESULT_BYTES`` fails that query alone while the session's other
queries keep updating. The server runs tests/settings_large.py (a 9 MiB limit)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.conftest import NodeClient
from tests.live.test_python_sync import PyClient
from tests.support import servers
from tests.testapp.functions.clients import blob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SIZE = 8 * 1024 * 1024
TOO_BIG = 10 * 1024 * 1024
LIMIT = 9 * 1024 * 1024  # tests/settings_large.py


@pytest.fixture(scope="module")
def server_url(test_database_url: str, redis_url: str) -> Iterator[str]:
    with servers.serving(test_database_url, redis_url,
                         DJANGO_SETTINGS_MODULE="tests.settings_large") as server:
        yield server.url


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_npm_client_gets_an_8_mib_result_in_chunks_and_an_error_for_one_over_the_limit(
    server_url: str, node_client: NodeClient
) -> None:
    out = node_client.run("large_result.mjs", server_url,
                          {"prefix": "big:", "size": SIZE, "tooBig": TOO_BIG}, timeout=100)
    # The 8 MiB result arrived intact, first and after a write changed it
    expected = {"length": SIZE, "sha256": sha256(blob(SIZE))}
    assert out["first"] == {"bodies": [], **expected}
    assert out["updated"] == {"bodies": ["big:after"], **expected}
    # ... in TransitionChunks (two Transitions over 4 MiB: at least two parts each)
    assert out["chunks"] >= 4
    # The query over the limit failed, naming the limit; the small query kept updating
    assert f"over the limit of {LIMIT} bytes" in out["error"]["message"]
    assert out["small"] == ["big:after"]


def test_python_client_gets_an_8_mib_result_whole_and_an_error_for_one_over_the_limit(
    server_url: str,
) -> None:
    client = PyClient(server_url)
    try:
        big = client.subscribe("testapp/clients:sized", {"size": SIZE, "prefix": "pybig:"})
        over = client.subscribe("testapp/clients:sized", {"size": TOO_BIG, "prefix": "pybig:"})
        small = client.subscribe("testapp/clients:list_bodies", {"prefix": "pybig:"})
        first = client.update(big, timeout=40)
        assert first["bodies"] == [] and first["blob"] == blob(SIZE)
        failed = client.process.wait(
            lambda m: m["event"] == "update" and m["id"] == over, "the refused query", 40)
        assert not failed["ok"] and f"over the limit of {LIMIT} bytes" in failed["message"]
        assert client.update(small) == []
        # A write updates the big result and the small query; the session stayed open
        assert client.value("mutation", "testapp:add_note", {"body": "pybig:after"})
        updated = client.update(big, lambda v: v["bodies"] == ["pybig:after"], timeout=40)
        assert updated["blob"] == blob(SIZE)
        assert client.update(small, lambda v: v == ["pybig:after"]) == ["pybig:after"]
    finally:
        client.close()
