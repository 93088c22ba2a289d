"""Seeing what changed and what was read: the triggers that log every committed write, the log
itself, the read sets a query leaves, and the matcher that pairs the two."""

from typing import Any


def __getattr__(name: str) -> Any:
    from reactive.compat import forwarded

    return forwarded(__name__, name)
