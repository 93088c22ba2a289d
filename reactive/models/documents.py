"""Schema-free documents (``ctx.db``): Document rows (tracked) and the per-table DocumentShape."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

EXACT = 2**53  # the largest integer every JSON reader (a float64) holds exactly


def _number(text: str) -> int | float:
    value = int(text)
    return value if -EXACT <= value <= EXACT else float(value)


class DocumentDecoder(json.JSONDecoder):
    """Reads a document's JSON as the client wrote it: PostgreSQL's jsonb prints a float such
    as ``1e20`` as the integer ``100000000000000000000``, which must come back a float (the
    writes refuse integers beyond ±2**53, so any such integer was a float)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_int", _number)
        super().__init__(*args, **kwargs)


class Document(models.Model):
    """One JSON document of a schema-free table; every table shares this one database table.

    ``table`` names the document table, ``data`` holds the user's fields (never ``_id`` or
    ``_creationTime``, which are ``id`` and ``creation_time``). Tracked by change capture, so
    every write reaches live queries, with the read sets matching on ``table`` and on document
    fields (docs/internals/documents.md).
    """

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    table = models.CharField(max_length=64, editable=False)
    creation_time = models.FloatField(editable=False)  # ms since the epoch, as Convex
    data: models.JSONField[Any] = models.JSONField(default=dict, decoder=DocumentDecoder)

    class Meta:
        verbose_name = "document"
        indexes = [models.Index(fields=["table", "creation_time"], name="reactive_doc_table_time")]

    def __str__(self) -> str:
        return f"{self.table}:{self.id}"


class DocumentShape(models.Model):
    """What has been written to one document table: its shape (``shape.py``) and enforcement.

    Widened in the writing mutation when a document brings something new; never recomputed
    from the rows.
    """

    table = models.CharField(primary_key=True, max_length=64, editable=False)
    shape: models.JSONField[Any] = models.JSONField(default=dict)
    enforced = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "document shape"

    def __str__(self) -> str:
        return self.table
