""""Did you mean ...?": the closest known names to a mistyped one (difflib), as a sentence."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_names(word: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """The names in ``known`` closest to ``word``, best first (difflib ratio 0.75 or more)."""
    return difflib.get_close_matches(word, sorted(set(known)), n=limit, cutoff=0.75)


def did_you_mean(word: str, known: Iterable[str], *, limit: int = 3) -> str:
    """Return ``"Did you mean 'a' or 'b'?"`` for the names in ``known`` closest to ``word``,
    or ``""`` when none is close."""
    return phrase(close_names(word, known, limit=limit))


def phrase(matches: list[str]) -> str:
    """``"Did you mean 'a', 'b' or 'c'?"``, or ``""`` for no matches."""
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"Did you mean {options}?"
