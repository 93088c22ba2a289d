""""Did you mean ...?": the closest known names to a mistyped one (difflib), as a sentence."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str], *, limit: int = 3) -> str:
    """Return ``"Did you mean 'a' or 'b'?"`` for the names in ``known`` closest to ``word``,
    or ``""`` when none is close (difflib ratio below 0.75)."""
    matches = difflib.get_close_matches(word, sorted(set(known)), n=limit, cutoff=0.75)
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"Did you mean {options}?"
