"""What the reaction tests read back: the notes handlers wrote, and a reaction's row."""

from __future__ import annotations

from reactive.models import Reaction
from tests.testapp.models import Note


def notes(prefix: str) -> list[str]:
    return list(Note.objects.filter(body__startswith=prefix).order_by("id")
                .values_list("body", flat=True))


def reaction(name: str) -> Reaction:
    return Reaction.objects.get(name=name)
