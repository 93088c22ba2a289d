"""`manage.py reactive_dev` (what `make run` runs): the whole stack up, serving, and down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from reactive.embedded.ports import free_port
from tests.support.servers import ROOT, scratch_dir

pytestmark = pytest.mark.timeout(180)


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _wait_for(url: str, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, object]:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"reactive_dev exited early:\n{output[-3000:]}")
        try:
            return _post(url, {"path": "chat:channels", "args": {}})
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the dev stack did not serve in time")


def test_reactive_dev_serves_the_example_and_stops_everything_on_ctrl_c() -> None:
    # Given a fresh state dir and no external servers
    state = scratch_dir("reactive-dev-")
    port = free_port()
    ours = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    command = [sys.executable, "example_project/manage.py", "reactive_dev",
               "--port", str(port), "--state-dir", str(state)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # When it is up, the example's functions answer over HTTP
        result = _wait_for(f"http://127.0.0.1:{port}/api/query", proc, time.monotonic() + 120)
        assert result["status"] == "success"
        assert [channel["name"] for channel in result["value"]] == ["general"]  # demo data
        recorded = json.loads((state / "services.json").read_text())
        assert recorded["database_url"].endswith("/reactive")
        # Then Ctrl-C stops the stack and every child
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    assert "dev stack ready" in text
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left running:\n{leftovers.stdout}"
    with pytest.raises(OSError, match="Connection refused"):
        _post(f"http://127.0.0.1:{port}/api/query", {"path": "chat:channels"})
