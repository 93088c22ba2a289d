"""The function log stream is shared by every process: a line a scheduled function logs in a
real Celery worker reaches ``/api/stream_function_logs`` and ``npx convex logs`` on the ASGI
server; cursors follow commit order across concurrent writers; the table stays bounded."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import override_settings

from reactive.functions.runtime import runtime
from reactive.models import FunctionLog, Job, JobState
from reactive.observability import logstream
from tests.conftest import JS_DIR
from tests.support.fixtures_celery import CeleryProcess
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

KEY = "tests-admin-key-0123456789"
ADMIN = {"Authorization": f"Convex {KEY}"}
CLI = JS_DIR / "node_modules" / "convex" / "bin" / "main.js"


def schedule(name: str, **args: Any) -> int:
    return int(runtime.run("testapp/jobs:schedule_by_name", {"name": name, "args": args}))


def poll(url: str, cursor: int) -> dict[str, Any]:
    response = requests.get(f"{url}/api/stream_function_logs", params={"cursor": cursor},
                            headers=ADMIN, timeout=15)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_line_logged_in_a_celery_worker_reaches_the_servers_stream(
    live_server_url: str, worker: CeleryProcess
) -> None:
    # Given a watcher of the server's stream, past whatever history there is
    cursor = poll(live_server_url, 0)["newCursor"]
    # When the worker runs a scheduled mutation that prints, and one that fails
    ok = schedule("testapp/dataio:noisy_write", body="from the worker")
    failed = schedule("testapp/dataio:noisy_write", body="fail")
    wait_for(lambda: Job.objects.filter(pk__in=[ok, failed], state__in=[
        JobState.SUCCESS, JobState.FAILED]).count() == 2, timeout=60, what="both jobs")
    # Then the server (another process) serves both calls, with their lines and outcome
    seen: list[dict[str, Any]] = []

    def arrived() -> bool:
        nonlocal cursor
        body = poll(live_server_url, cursor)
        seen.extend(body["entries"])
        cursor = body["newCursor"]
        return len([e for e in seen if e["identifier"] == "testapp/dataio:noisy_write"]) >= 2

    wait_for(arrived, timeout=30, interval=0.2, what="the worker's calls in the stream")
    mine = [e for e in seen if e["identifier"] == "testapp/dataio:noisy_write"]
    good = next(e for e in mine if "error" not in e)
    bad = next(e for e in mine if "error" in e)
    assert good["logLines"] == ["[LOG] writing from the worker"]
    assert (good["udfType"], good["kind"], good["identity"]) == ("Mutation", "Completion", None)
    assert bad["logLines"] == ["[LOG] writing fail", "[WARN] refusing fail"]
    assert "refused" in bad["error"]
    assert good["executionTime"] > 0 and good["timestamp"] > 0


def test_npx_convex_logs_shows_what_a_worker_logged(
    live_server_url: str, worker: CeleryProcess, node: str, tmp_path: Path
) -> None:
    # Given `convex logs` (self-hosted mode) watching the ASGI server
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "app", "private": True}))
    (project / "node_modules").symlink_to(JS_DIR / "node_modules")
    env = {**os.environ, "CI": "1", "NO_COLOR": "1", "CONVEX_SELF_HOSTED_URL": live_server_url,
           "CONVEX_SELF_HOSTED_ADMIN_KEY": KEY}
    for name in ("CONVEX_DEPLOYMENT", "CONVEX_DEPLOY_KEY"):
        env.pop(name, None)
    cli = subprocess.Popen([node, str(CLI), "logs"], cwd=project, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert cli.stdout is not None
    os.set_blocking(cli.stdout.fileno(), False)
    output = bytearray()

    def printed(text: str) -> bool:
        with contextlib.suppress(BlockingIOError, TypeError):
            output.extend(os.read(cli.stdout.fileno(), 1 << 16))  # type: ignore[union-attr]
        return text in output.decode(errors="replace")

    try:
        # When a scheduled action run by the worker prints (again, until the CLI has made
        # its first poll, whose entries are history and not shown)
        def logged() -> bool:
            schedule("testapp/dataio:shout", word="tail me")
            return wait_quietly(lambda: printed("action says tail me"), 3)

        wait_for(logged, timeout=60, interval=0.1, what="the CLI output")
    finally:
        cli.kill()
        cli.wait(timeout=10)
        cli.stdout.close()
    # Then the CLI printed the action's own line and the query it ran, tagged as Convex does
    lines = output.decode(errors="replace").splitlines()
    assert any("A(testapp/dataio:shout)" in line and "action says tail me" in line
               for line in lines), lines
    assert any("careful tail me" in line for line in lines), lines


def wait_quietly(condition: Any, timeout: float) -> bool:
    """Like wait_for, but False at the deadline (so the caller can try again)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_readers_following_cursors_see_concurrent_writers_exactly_once() -> None:
    # Given four threads each flushing batches at once, and a reader following cursors
    def entry(writer: int, n: int) -> dict[str, Any]:
        return {"kind": "Completion", "udfType": "Query", "identifier": f"w{writer}:{n}",
                "timestamp": 1.0, "logLines": [], "executionTime": 0.0, "identity": None}

    def write(writer: int) -> None:
        try:
            for batch in range(20):
                logstream._write([entry(writer, batch * 5 + i) for i in range(5)], 100_000)
        finally:
            connection.close()

    seen: list[str] = []
    cursor = logstream.stream.since(0)[1]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    while True:
        finished = not any(t.is_alive() for t in threads)  # before reading: then all committed
        entries, cursor = logstream.stream.since(cursor)
        seen.extend(e["identifier"] for e in entries if e["identifier"].startswith("w"))
        if finished and not entries:
            break
    # Then every entry was read once, none skipped by a later commit of a smaller id
    assert sorted(seen) == sorted(f"w{w}:{n}" for w in range(4) for n in range(100))


def test_the_stream_keeps_only_the_newest_entries() -> None:
    with override_settings(REACTIVE={"FUNCTION_LOGS_STREAM_SIZE": 30}):
        for n in range(4):
            logstream._write([{"identifier": f"old{n}:{i}", "timestamp": 1.0}
                              for i in range(20)], 30)
    assert FunctionLog.objects.count() == 30
    newest = list(FunctionLog.objects.order_by("id").values_list("entry", flat=True))
    assert newest[-1]["identifier"] == "old3:19" and newest[0]["identifier"] == "old2:10"


@pytest.mark.parametrize(("cursor", "status"), [("abc", 400), ("-1", 400), ("1.5", 400),
                                                (str(2**64), 400), ("", 400)])
def test_bad_cursors_get_a_clear_error(live_server_url: str, cursor: str, status: int) -> None:
    response = requests.get(f"{live_server_url}/api/stream_function_logs",
                            params={"cursor": cursor}, headers=ADMIN, timeout=10)
    assert response.status_code == status
    assert response.json()["code"] == "BadCursor"


def test_odd_output_of_one_call_does_not_lose_the_others_in_its_batch() -> None:
    from reactive.functions.logs import CallRecord
    from reactive.types import Identity

    # Given, queued together, a call that printed a NUL and a lone surrogate, and a plain one
    cursor = logstream.stream.since(0)[1]
    for lines in (("[LOG] nul \x00 and \ud800 here",), ("[LOG] plain",)):
        logstream.stream.record(CallRecord("testapp/dataio:chatty", Identity(), time.time(),
                                           0.001, True, None, lines))
    # When the batch is written
    wait_for(lambda: logstream.stream.flush() == 0 and logstream.stream.since(cursor)[0],
             what="the batch")
    # Then both are there, the odd characters made visible
    lines = [e["logLines"][0] for e in logstream.stream.since(cursor)[0]]
    assert lines == ["[LOG] nul \\x00 and ? here", "[LOG] plain"]
