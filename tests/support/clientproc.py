"""A real client in a child process, driven by JSON lines: commands to its stdin, events (JSON
objects with an ``"event"`` key) from its stdout. Used for the npm client (Node) and for the
PyPI client, whose blocking calls hold the GIL and so cannot be bounded from a thread."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import servers


class ClientProcess:
    """Starts ``argv``; ``wait`` takes events as they arrive, ``send`` writes a command."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.stderr_path = servers.scratch_dir("reactive-client-") / "stderr.log"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env={**os.environ, **env}, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            )
        self._buffer: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):  # clients log to stdout too
                message = json.loads(line)
                if isinstance(message, dict) and "event" in message:
                    with self._arrived:
                        self._buffer.append(message)
                        self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def wait(self, match: Callable[[dict[str, Any]], bool], what: str,
             timeout: float = 30) -> dict[str, Any]:
        """Remove and return the first event (arrived or arriving) for which ``match`` holds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for i, message in enumerate(self._buffer):
                    if match(message):
                        return self._buffer.pop(i)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {what} within {timeout}s; pending: "
                                         f"{self._buffer[-5:]}\n{self.diagnostics()}")
                self._arrived.wait(min(remaining, 0.5))

    def event(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait(lambda m: m["event"] == name, f"{name!r} event", timeout)

    def pending(self) -> list[dict[str, Any]]:
        """Events arrived and not yet taken."""
        with self._arrived:
            return list(self._buffer)

    def send(self, command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command if isinstance(command, str) else json.dumps(command))
                              + "\n")
        self.proc.stdin.flush()

    def diagnostics(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
