"""One table as CSV (and JSONL) out and back in: every column type of the test models round
trips through reactive_export/reactive_import, and malformed CSV is refused naming the row and
column, leaving the table as it was."""

from __future__ import annotations

import csv
import datetime
import json
import math
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from tests.testapp.models import Account, Item, MovedNote, Note, Sample, Shape

pytestmark = pytest.mark.django_db(transaction=True)

# Parents before children: the import of a child checks its foreign keys.
TABLES = ["testapp_note", "testapp_item", "testapp_sample", "testapp_shape", "testapp_account",
          "testapp_movednote"]


def rows(table: str) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT to_jsonb(t)::text FROM "{table}" t ORDER BY 1')
        return [json.loads(text) for (text,) in cursor.fetchall()]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def seed() -> None:
    user = User.objects.create_user("ada", password="x")
    notes = [Note.objects.create(body=body, author=user if i else None) for i, body in
             enumerate(["plain", "", 'comma, "quote"\nnew line\r\n', "caf\u00e9 \U0001f600",
                        " spaces "])]
    for i, data in enumerate([{}, [], {"a": [1, 2.5, None]}, "1", 1, True, "", 2**60]):
        Item.objects.create(name=f"item {i}", price=Decimal("-12345678.90") if i else 0,
                            owner=user if i % 2 else None, data=data,
                            uid=uuid.UUID(int=i))
    for i, weight in enumerate([0.0, 0.1 + 0.2, 1e15, 1e-7, -5e300, math.nan, math.inf]):
        Shape.objects.create(payload=[None, {"k": "v"}, "text", 0][i % 4], weight=weight,
                             price=Decimal("0.0001"), at=None if i % 2 else datetime.datetime(
                                 1969, 7, 20, 20, 17, 40, 123, tzinfo=datetime.UTC),
                             uid=uuid.uuid4() if i % 2 else None, tags=[i, -i] if i else [],
                             handle="Caf\u00e9" if i else "")
    for i in range(3):
        Sample.objects.create(num=i - 1, label=f"s{i}", maybe=None if i else 0, flag=bool(i),
                              at=datetime.datetime(2024, 2, 29, tzinfo=datetime.UTC),
                              amount=Decimal("999999.99"), note=notes[i] if i else None)
    Account.objects.create(name="big", balance=-(2**63))
    MovedNote.objects.create(id="k,\"1\"", creation_time=1709208000123.456, body="x",
                             pinned=None, tags={"t": ["a"]})


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_each_table_round_trips_through_one_table_files(tmp_path: Path, fmt: str) -> None:
    # Given tables holding every column type of the test models, edge values included
    seed()
    before = {table: rows(table) for table in TABLES}
    # When each is exported alone, all are wiped, and each is imported back
    for table in TABLES:
        assert "exported" in run("reactive_export", str(tmp_path / f"{table}.{fmt}"),
                                 "--table", table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    for table in TABLES:
        run("reactive_import", str(tmp_path / f"{table}.{fmt}"), "--table", table)
    # Then every row is back, column for column
    for table in TABLES:
        assert rows(table) == before[table], table


def test_a_csv_has_a_header_of_field_names_and_typed_cells(tmp_path: Path) -> None:
    seed()
    run("reactive_export", str(tmp_path / "items.csv"), "--table", "testapp_item")
    with (tmp_path / "items.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        cells = [dict(zip(header, row, strict=True)) for row in reader]
    assert header[:2] == ["_id", "_creationTime"]
    assert set(header) == {"_id", "_creationTime", "name", "price", "created_at", "owner_id",
                           "data", "uid"}
    by_name = {cell["name"]: cell for cell in cells}
    assert by_name["item 3"]["data"] == '"1"' and by_name["item 4"]["data"] == "1"
    assert by_name["item 0"]["owner_id"] == "" and by_name["item 1"]["price"] == "-12345678.9"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("lines", "message"), [
    ([], "the first line is empty"),
    (["", "_id,name,balance"], "the first line is empty"),
    (["name,balance", "a,1"], "no '_id' column"),
    (["_id,name,name", "1,a,b"], "names 'name' twice"),
    (["_id,name,balance,colour", "1,a,1,red"], r"'colour', which is not a field.*balance"),
    (["_id,name,balance", "1,a,1", "2,b"], r"row 2 \(line 3\) has 2 cells"),
    (["_id,name,balance", "1,a,lots"], r"row 1, column 'balance': expected an integer"),
    (["_id,name,balance", "1,a,1.5"], r"row 1, column 'balance': expected an integer"),
    (["_id,name,balance", "x,a,1"], r"row 1, column '_id': expected an integer"),
    (["_id,name,balance", "1,a,"], r"row 1, column 'balance': empty, but 'balance' cannot"),
    (["_id,name,balance", '1,"a,1'], "not valid CSV"),
    (["_id,name,balance", "1,a,1", "2,a,2"], r"row 2 was refused.*unique"),
    (["_id,name,balance", "1,a,1", "1,b,2"], r"row 2 was refused.*(unique|duplicate)"),
])
def test_malformed_account_csv_is_refused_naming_row_and_column(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    # Given a table with a row already, imported into with --append
    Account.objects.create(name="kept", balance=5)
    path = write(tmp_path / "accounts.csv", *lines)
    # When the bad file is imported, then the error names where, and nothing changed
    with pytest.raises(CommandError, match=message):
        run("reactive_import", str(path), "--table", "testapp_account", "--append")
    assert list(Account.objects.values_list("name", "balance")) == [("kept", 5)]


@pytest.mark.parametrize(("header", "cell", "message"), [
    ("flag", "maybe", "column 'flag': expected true or false"),
    ("amount", "1,5", "column 'amount': expected a decimal number, found '1,5'"),
    ("at", "29/02/2024", "column 'at': expected an ISO 8601 date and time"),
    # Foreign keys are checked at commit (Django makes them deferred): named by column and value
    ("note_id", "7", r"(?s)refused at commit.*\(note_id\)=\(7\) is not present"),
])
def test_malformed_sample_cells_name_their_column(
    tmp_path: Path, header: str, cell: str, message: str
) -> None:
    good = {"_id": "1", "num": "1", "label": "l", "maybe": "", "flag": "true",
            "at": "2024-02-29T00:00:00+00:00", "amount": "1.50", "note_id": ""}
    path = tmp_path / "samples.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(good))
        writer.writeheader()
        writer.writerow(good | {"_id": "2"})
        writer.writerow(good | {header: cell})
    with pytest.raises(CommandError, match=message):
        run("reactive_import", str(path), "--table", "testapp_sample")
    assert Sample.objects.count() == 0


def test_csv_import_reads_json_uuid_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text('\ufeff_id,name,price,created_at,data,uid,owner_id\n'
                    '7,lamp,12.50,2024-02-29T12:00:00Z,"{""a"": [1]}",'
                    f"{uuid.UUID(int=9)},\n", encoding="utf-8")
    run("reactive_import", str(path), "--table", "testapp_item", "--format", "csv")
    item = Item.objects.get()
    assert (item.pk, item.price, item.data, item.uid, item.owner_id) == (
        7, Decimal("12.50"), {"a": [1]}, uuid.UUID(int=9), None)
    for content, message in [('_id,name,price,created_at,data\n8,x,1,2024-01-01,{bad\n',
                              "column 'data': expected JSON"),
                             ("_id,name,price,uid\n8,x,1,not-a-uuid\n",
                              "column 'uid': expected a UUID")]:
        path.write_text(content, encoding="utf-8")
        with pytest.raises(CommandError, match=message):
            run("reactive_import", str(path), "--table", "testapp_item", "--format", "csv",
                "--append")
    assert Item.objects.count() == 1
    path.write_bytes(b"_id,name\n\xff\xfe,x\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        run("reactive_import", str(path), "--table", "testapp_item", "--format", "csv",
            "--append")
    with pytest.raises(CommandError, match="one --table"):
        run("reactive_import", str(path), "--format", "csv")


def test_a_refused_jsonl_row_is_named_by_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.jsonl",
                 *[json.dumps({"_id": str(i), "name": f"n{i}", "balance": i}) for i in range(5)],
                 "", json.dumps({"_id": "9", "name": "n2", "balance": 0}))
    with pytest.raises(CommandError, match=r"line 7 was refused.*unique"):
        run("reactive_import", str(path), "--table", "testapp_account")
    assert Account.objects.count() == 0
