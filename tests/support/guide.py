"""Runs a Markdown guide's code blocks in order, as a reader would: ``python`` blocks whose first
line names a file (``# mysite/urls.py``; ``...: add at the end`` appends) are written, ``sh``
blocks are run line by line, and a ``text`` block right after an ``sh`` block is output that
must appear."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.fresh import clean_env
from tests.support.waiting import wait_for

FENCE = re.compile(r"^```(\w*)\s*$")
FILE_COMMENT = re.compile(r"^# ([\w./-]+\.py)\b(.*)$")


@dataclass
class Block:
    lang: str
    text: str
    line: int  # where it starts in the guide, for messages
    heading: str  # the last heading above it

    @property
    def target(self) -> tuple[str, bool] | None:
        """``(file, append)`` for a block that shows a file, else None."""
        found = FILE_COMMENT.match(self.text.split("\n", 1)[0])
        return (found.group(1), "add at the end" in found.group(2)) if found else None


def blocks(markdown: str) -> Iterator[Block]:
    """The fenced code blocks of ``markdown`` in order (fences at column 0)."""
    heading, lang, start, body = "", None, 0, []
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = FENCE.match(line)
        if lang is None and fence:
            lang, start, body = fence.group(1), number, []
        elif lang is not None and line.rstrip() == "```":
            yield Block(lang, "\n".join(body) + "\n", start, heading)
            lang = None
        elif lang is not None:
            body.append(line)
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()


@dataclass
class GuideRunner:
    """Follows a guide in ``root``. ``replace`` maps text of the guide (an address, a port) to
    what this machine has; ``background`` maps a command that runs until stopped (a dev
    server) to the output line saying it is ready; ``skip`` lists command prefixes not run,
    each with the reason (say, the package is already installed in this venv)."""

    root: Path
    replace: dict[str, str] = field(default_factory=dict)
    background: dict[str, str] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120
    log: list[str] = field(default_factory=list)
    _server: subprocess.Popen[bytes] | None = None
    _server_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        venv_bin = str(Path(sys.executable).parent)  # `python`, `django-admin`: this venv's
        self.env = {**clean_env(), "PATH": f"{venv_bin}:{os.environ['PATH']}", **self.env}

    def follow(self, guide: Path, *, start_at: str | None = None,
               stop_at: str | None = None) -> None:
        """Every block of ``guide`` in order, from the heading ``start_at`` (the first block
        under it) up to the heading ``stop_at``."""
        output: str | None = None
        started = start_at is None
        for block in blocks(guide.read_text()):
            started = started or block.heading == start_at
            if not started:
                continue
            if stop_at is not None and block.heading == stop_at:
                return
            where = f"{guide.name}:{block.line} ({block.heading})"
            if block.lang == "python" and block.target:
                self._write(*block.target, self._replaced(block.text))
                output = None
            elif block.lang == "sh":
                output = self._run_block(block.text, where)
            elif block.lang == "text" and output is not None:
                for expected in filter(None, (ln.strip() for ln in block.text.splitlines())):
                    assert expected in output, f"{where}: {expected!r} not in:\n{output}"
                output = None

    def stop(self) -> None:
        """Stop the background command, as Ctrl-C would."""
        proc, self._server = self._server, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    def _write(self, relative: str, append: bool, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            text = path.read_text() + "\n" + text
        path.write_text(text)

    def _replaced(self, text: str) -> str:
        for old, new in self.replace.items():
            text = text.replace(old, new)
        return text

    def _run_block(self, text: str, where: str) -> str:
        outputs = []
        for command in self._replaced(text.replace("\\\n", " ")).splitlines():
            command = command.strip()
            if not command or command.startswith("#"):
                continue
            if any(command.startswith(prefix) for prefix in self.skip):
                self.log.append(f"skipped: {command}")
                continue
            exported = re.fullmatch(r"export (\w+)=(\S+)", command)
            if exported:
                self.env[exported.group(1)] = exported.group(2)
                continue
            ready = next((r for c, r in self.background.items() if command.startswith(c)), None)
            if ready is not None:
                self._start(command, ready, where)
                continue
            started = time.monotonic()
            done = subprocess.run(["bash", "-c", command], cwd=self.root, env=self.env,
                                  capture_output=True, text=True, timeout=self.timeout)
            took = time.monotonic() - started
            self.log.append(f"$ {command} [{took:.1f} s]\n{done.stdout}{done.stderr}")
            assert done.returncode == 0, (
                f"{where}: `{command}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
                f"{self._server_output()}")
            outputs.append(done.stdout)
        return "".join(outputs)

    def _start(self, command: str, ready: str, where: str) -> None:
        self.stop()
        self._server_lines = lines = []
        proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.root, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self._server = proc

        def read() -> None:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                lines.append(raw.decode(errors="replace").rstrip())

        threading.Thread(target=read, daemon=True).start()
        started = time.monotonic()
        try:
            wait_for(lambda: any(ready in line for line in lines) or proc.poll() is not None,
                     timeout=180, what=f"`{command}` to print {ready!r}")
        finally:
            took = time.monotonic() - started
            self.log.append(f"$ {command} (in the background, ready in {took:.1f} s)")
        assert proc.poll() is None, f"{where}: `{command}` stopped:{self._server_output()}"

    def _server_output(self) -> str:
        if not self._server_lines:
            return ""
        shown = [line for line in self._server_lines if "Applying" not in line][-80:]
        return "\n--- background command ---\n" + "\n".join(shown)
