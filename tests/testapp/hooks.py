"""Points where a test can make a function wait or interfere, to produce genuine conflicts."""

from __future__ import annotations

from collections.abc import Callable

# Called inside mutations between their read and their write; tests set it and reset it.
between_read_and_write: Callable[[], None] | None = None


def pause() -> None:
    if between_read_and_write is not None:
        between_read_and_write()
