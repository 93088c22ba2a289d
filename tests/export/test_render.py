"""The COPY rendering of documents against the Python reference (to_jsonb decoded, made a
document by Table.document, encoded again): the same values, key order and number kinds for
every column type the test models have, edge values included."""

from __future__ import annotations

import datetime
import json
import math
import random
import struct
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from reactive.export.render import copy_statement, document_lines, python_lines
from reactive.export.stream import snapshot_transaction
from reactive.export.tables import exported_tables
from tests.testapp.models import (
    Account,
    Document,
    Item,
    Legacy,
    MovedNote,
    Note,
    Sample,
    Shape,
)

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.UTC
RANDOM = 1000
TEXTS = ["plain", "", 'quote " and back\\slash \\N \\\\ end\\', "tab\tnew\nline\rcr",
         "control \x01\x1f\x7f", "caf\u00e9 \u2603 \U0001f600", "\\u00e9 literally", "\u2028"]
TIMES = [
    datetime.datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    datetime.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC),
    datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime.datetime(1970, 1, 1, tzinfo=UTC),
    datetime.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime.datetime(2001, 9, 9, 1, 46, 40, 999, tzinfo=datetime.timezone(
        datetime.timedelta(hours=5, minutes=30))),
]
FLOATS = [0.0, -0.0, 1.0, 0.1 + 0.2, 1e-7, 1e15, 1e16, 1.5e300, -123456789.125, 2.0**53 + 2,
          math.nan, math.inf, -math.inf, 5e-324]
JSONS: list[Any] = [None, {}, [], {"b": 1, "a": [1.5, "x\u00e9", None, True], "": {"z": {}}},
                    "just text \\ \"", 2**63 - 1, -(2**53) - 1, 1e-7, 1.25, False,
                    {"long key first": 1, "k": 2, "\u00e9": 3, "e": 4}]


def seed() -> None:
    user = User.objects.create_user("ad\u00e1", email="a@example.com", password="x",
                                    first_name=TEXTS[2])
    notes = []
    for i, text in enumerate(TEXTS):
        notes.append(Note.objects.create(body=text, author=user if i % 2 else None))
    for note, at in zip(notes, TIMES, strict=False):
        Note.objects.filter(pk=note.pk).update(created_at=at)
    for i, payload in enumerate(JSONS):
        Item.objects.create(name=TEXTS[i % len(TEXTS)], data=payload if payload is not None
                            else {}, price=[Decimal("100.00"), Decimal("0.01"),
                                            Decimal("-12345678.90")][i % 3],
                            owner=user if i % 2 else None, uid=uuid.UUID(int=i))
    for i, weight in enumerate(FLOATS):
        Shape.objects.create(payload=JSONS[i % len(JSONS)], weight=weight,
                             price=Decimal("-12345678.1234") if i % 2 else Decimal("0.0001"),
                             at=TIMES[i % len(TIMES)] if i % 3 else None,
                             uid=uuid.uuid4() if i % 2 else None,
                             tags=[] if i % 2 else [1, -2, 2**31 - 1], handle=TEXTS[i % 8])
    for i in range(4):
        Sample.objects.create(num=-(2**31) + i, label=TEXTS[i][:20], maybe=None if i % 2 else i,
                              at=TIMES[i], amount=Decimal("999999.99"), flag=bool(i % 2),
                              note=notes[i] if i % 2 else None)
    Account.objects.create(name="big", balance=-(2**63))
    Account.objects.create(name="\u00e9", balance=2**63 - 1)
    Document.objects.create(title=TEXTS[5], body="b", embedding=[0.1, -2.5, 1e-3])
    Document.objects.create(title="none", body="b", embedding=None)
    MovedNote.objects.create(id="k\u00e9y \"1\"", creation_time=1709208000123.456, body="x",
                             pinned=None, tags=JSONS[3])
    MovedNote.objects.create(id="2", creation_time=1.0, body="", pinned=True, tags=None)
    Legacy.objects.create(name=TEXTS[1], size=0)
    # Many random times (float rounding of _creationTime) and doubles (float text in JSON)
    rng = random.Random(13)
    many = Note.objects.bulk_create(Note(body=str(i)) for i in range(RANDOM))
    start = datetime.datetime(1600, 1, 1, tzinfo=UTC)
    for note in many:
        note.created_at = start + datetime.timedelta(microseconds=rng.randrange(800 * 365 * 86400
                                                                                * 10**6))
    Note.objects.bulk_update(many, ["created_at"])
    doubles = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(RANDOM)]
    Shape.objects.bulk_create(Shape(weight=d, tags=[]) for d in doubles if math.isfinite(d))


def parsed(line: bytes) -> Any:
    """A line as a value that keeps key order and number kinds: objects as tagged pair lists,
    each scalar with its Python type (so 1 and 1.0 differ)."""
    def tag(value: Any) -> Any:
        if isinstance(value, tuple):
            return ("object", [(key, tag(item)) for key, item in value[1]])
        if isinstance(value, list):
            return ("array", [tag(item) for item in value])
        return (type(value).__name__, value)

    return tag(json.loads(line, object_pairs_hook=lambda pairs: ("object", pairs)))


def lines(batches: Any) -> list[bytes]:
    out: list[bytes] = []
    for count, chunk in batches:
        split = chunk.splitlines()
        assert len(split) == count and chunk.endswith(b"\n")
        out.extend(split)
    return out


def test_copy_rendering_equals_the_python_reference_for_every_table() -> None:
    # Given every exported table holding edge values of each of its column types
    seed()
    tables = exported_tables()
    assert {"testapp_shape", "testapp_document", "testapp_movednote", "auth_user"} <= set(tables)
    checked = 0
    for table in tables.values():
        with snapshot_transaction() as cursor:
            # When both paths render the table at one snapshot
            assert copy_statement(cursor, table) is not None, table.name  # the fast path ran
            fast = lines(document_lines(table))
            reference = lines(python_lines(table))
        # Then each line parses to the same document: values, key order, number kinds
        assert len(fast) == len(reference), table.name
        by_id = {json.loads(line)["_id"]: line for line in reference}
        for new in fast:
            old = by_id.pop(json.loads(new)["_id"])
            assert parsed(new) == parsed(old), (table.name, new, old)
        checked += len(fast)
    assert checked >= len(TEXTS) + len(JSONS) + len(FLOATS) + 12 + RANDOM


def test_an_infinite_creation_time_is_refused_naming_the_table(tmp_path: Path) -> None:
    note = Note.objects.create(body="x")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_note SET created_at = 'infinity' WHERE id = %s", [note.pk])
    with pytest.raises(CommandError, match=r"'testapp_note'.*infinite"):
        call_command("reactive_export", str(tmp_path / "n.jsonl"), "--table", "testapp_note",
                     "--no-progress", stdout=StringIO(), stderr=StringIO())


def test_the_copy_runs_at_the_callers_snapshot(test_database_url: str) -> None:
    # Given a snapshot taken before another connection commits a row
    Note.objects.create(body="before")
    table = exported_tables()["testapp_note"]
    with snapshot_transaction() as cursor:
        cursor.execute("SELECT count(*) FROM testapp_note")  # the snapshot is taken here
        with psycopg.connect(test_database_url, autocommit=True) as other:
            other.execute("INSERT INTO testapp_note (body, created_at) VALUES ('after', now())")
        # When the table is rendered in that transaction, then the later row is not there
        bodies = [json.loads(line)["body"] for line in lines(document_lines(table))]
    assert bodies == ["before"]
    assert Note.objects.count() == 2
