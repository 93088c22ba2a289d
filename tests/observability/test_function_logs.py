"""Function logs: what a function prints and logs reaches the caller's logLines (HTTP and
sync protocol), bounded per call, and never another caller's."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import override_settings

from reactive.functions import logs
from reactive.functions.runtime import Call, runtime
from tests.conftest import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def call(url: str, path: str, args: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{url}/api/function", data=json.dumps({"path": path, "args": args, "format": "json"}),
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    result: dict[str, Any] = response.json()
    return result


def test_http_response_carries_prints_and_log_records_in_convex_format(
    live_server_url: str,
) -> None:
    # When
    body = call(live_server_url, "testapp/dataio:chatty", {"word": "hi", "times": 2})
    # Then
    assert body["status"] == "success"
    assert body["logLines"] == [
        "[LOG] said hi 0", "[LOG] said hi 1", "[WARN] careful hi", "[ERROR] bad hi",
    ]


def test_failed_mutation_still_returns_its_log_lines(live_server_url: str) -> None:
    body = call(live_server_url, "testapp/dataio:noisy_write", {"body": "fail"})
    assert body["status"] == "error"
    assert body["errorData"] == {"refused": "fail"}
    assert body["logLines"] == ["[LOG] writing fail", "[WARN] refusing fail"]


def test_log_lines_are_capped_per_call_with_an_overflow_line(live_server_url: str) -> None:
    # Given FUNCTION_LOGS_MAX_LINES = 20 in tests/settings.py
    body = call(live_server_url, "testapp/dataio:chatty", {"word": "x", "times": 50})
    # Then
    assert len(body["logLines"]) == 21
    assert body["logLines"][-1].startswith("[ERROR] Log overflow (maximum 20)")


def test_an_action_collects_the_logs_of_the_query_it_runs(live_server_url: str) -> None:
    body = call(live_server_url, "testapp/dataio:shout", {"word": "a"})
    assert body["logLines"] == [
        "[LOG] action says a", "[LOG] said a 0", "[WARN] careful a", "[ERROR] bad a",
    ]


def test_concurrent_calls_never_see_each_others_lines() -> None:
    # Given two threads calling at once, each with its own word
    results: dict[str, list[str]] = {}

    def worker(word: str) -> None:
        lines: list[str] = []
        try:
            for _ in range(20):
                outcome = runtime.call(Call("testapp/dataio:chatty", {"word": word, "times": 3}))
                lines.extend(outcome.log_lines)
            results[word] = lines
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then each saw only its own lines, all of them
    for word, other in (("left", "right"), ("right", "left")):
        assert len(results[word]) == 20 * 5
        assert all(word in line and other not in line for line in results[word])


def test_capture_is_off_when_disabled_and_listeners_still_hear_calls() -> None:
    heard: list[logs.CallRecord] = []
    logs.add_listener(heard.append)
    try:
        with override_settings(REACTIVE={"FUNCTION_LOGS": False}):
            outcome = runtime.call(Call("testapp/dataio:chatty", {"word": "quiet"}))
    finally:
        logs.remove_listener(heard.append)
    assert outcome.ok and outcome.log_lines == []
    assert [(r.function, r.ok, r.log_lines) for r in heard] == [
        ("testapp/dataio:chatty", True, ())
    ]


def test_npm_client_prints_log_lines_of_queries_mutations_and_actions(
    live_server_url: str, node_client: NodeClient
) -> None:
    # When
    out = node_client.run("logs.mjs", live_server_url)
    # Then the client printed our lines through its logger, tagged with the function
    texts = [entry["text"] for entry in out["seen"]]
    assert out["value"] == 2 and out["mutation"]["ok"] and not out["failed"]["ok"]
    assert any("[CONVEX Q(testapp/dataio:chatty)] [LOG]" in t and "said sub 1" in t
               for t in texts), texts
    assert any("[CONVEX M(testapp/dataio:noisy_write)] [LOG]" in t and "writing hello" in t
               for t in texts), texts
    assert any("[CONVEX M(testapp/dataio:noisy_write)] [WARN]" in t and "refusing fail" in t
               for t in texts), texts
    assert any("[CONVEX A(testapp/dataio:shout)] [LOG]" in t and "action says act" in t
               for t in texts), texts
    assert not any("Could not parse" in t for t in texts), texts
