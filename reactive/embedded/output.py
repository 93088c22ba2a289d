"""One colour-coded prefix per process of the development stack: a thread per child copies
its output, line by line, to the terminal behind ``name |``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO

# ANSI colours, one per process name; others cycle through the rest.
COLOURS = {"dev": "1", "migrate": "33", "asgi": "36", "worker": "32", "beat": "35"}
_SPARE = ("34", "31", "92", "96")
WIDTH = 7


class Prefixer:
    """Writes lines as ``"  asgi | line"``, coloured when ``colour`` (a terminal)."""

    def __init__(self, write: Callable[[str], None], *, colour: bool) -> None:
        self._write = write
        self._colour = colour
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def line(self, name: str, text: str) -> None:
        """Print one line of ``name``'s output (thread-safe)."""
        label = f"{name:>{WIDTH}} |"
        if self._colour:
            code = COLOURS.get(name) or _SPARE[sum(map(ord, name)) % len(_SPARE)]
            label = f"\033[{code}m{label}\033[0m"
        with self._lock:
            self._write(f"{label} {text}")

    def follow(self, name: str, stream: IO[bytes]) -> None:
        """Copy ``stream`` (a child's stdout) line by line until it closes, in a thread."""

        def pump() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.line(name, raw.decode(errors="replace").rstrip())

        thread = threading.Thread(target=pump, name=f"reactive-dev-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def drain(self, timeout: float = 5) -> None:
        """Wait (bounded) for every followed stream to be copied to its end."""
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
