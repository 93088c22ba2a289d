"""reactive_export / reactive_import: a snapshot ZIP round trip of every row, the import modes,
atomicity per table, one-table JSONL/CSV, and malformed input."""

from __future__ import annotations

import csv
import datetime
import json
import zipfile
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from reactive.export.tables import exported_tables
from tests.testapp.models import Account, Item, Note, Sample

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ["auth_user", "testapp_item", "testapp_note", "testapp_sample", "testapp_account"]


def rows(table: str) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT to_jsonb(t) FROM "{table}" t ORDER BY 1')
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in cursor.fetchall()]


def run(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def seed() -> None:
    user = User.objects.create_user("ada", password="x")
    item = Item.objects.create(name="lamp", price=Decimal("12.50"), owner=user,
                               data={"tags": ["a", "b"], "n": 1.5})
    Item.objects.create(name="chair", price=Decimal("0.01"))
    notes = Note.objects.bulk_create(Note(body=f"note {i} \u00e9\n\"q\"") for i in range(2500))
    Sample.objects.create(num=7, label="x", maybe=None, amount=Decimal("3.14"), flag=True,
                          at=datetime.datetime(2024, 2, 29, 12, 0, tzinfo=datetime.UTC),
                          note=notes[3])
    Account.objects.create(name="a", balance=2**40)
    assert item.pk


def test_round_trip_export_wipe_import_gives_back_every_row(tmp_path: Path) -> None:
    # Given
    seed()
    before = {table: rows(table) for table in TABLES}
    path = tmp_path / "snap.zip"
    # When exported, wiped and imported
    assert "exported" in run("reactive_export", str(path))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE auth_user, testapp_item, testapp_note, testapp_sample, "
                       "testapp_account CASCADE")
    out = run("reactive_import", str(path), "--no-progress")
    # Then every row is back, field for field, and new rows get fresh ids
    assert {table: rows(table) for table in TABLES} == before
    assert "imported" in out
    assert Note.objects.create(body="next").pk > max(n["id"] for n in before["testapp_note"])
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert {"testapp_note/documents.jsonl", "testapp_note/generated_schema.jsonl"} <= names
    with zipfile.ZipFile(path) as archive:
        first = json.loads(archive.open("testapp_note/documents.jsonl").readline())
    assert set(first) >= {"_id", "_creationTime", "body"} and "id" not in first


def test_import_refuses_a_non_empty_table_unless_append_or_replace(tmp_path: Path) -> None:
    # Given an export of one table
    Account.objects.create(name="a", balance=1)
    path = tmp_path / "accounts.zip"
    run("reactive_export", str(path), "--table", "testapp_account", "--no-progress")
    # When imported again as is, then refused
    with pytest.raises(CommandError, match="not empty"):
        run("reactive_import", str(path), "--no-progress")
    # With --append the same ids collide: refused, and the table is unchanged
    Account.objects.create(name="b", balance=2)
    with pytest.raises(CommandError, match="nothing was imported"):
        run("reactive_import", str(path), "--append", "--no-progress")
    assert sorted(Account.objects.values_list("name", flat=True)) == ["a", "b"]
    # With --replace the table becomes exactly the export
    run("reactive_import", str(path), "--replace", "--no-progress")
    assert list(Account.objects.values_list("name", "balance")) == [("a", 1)]


def test_a_bad_line_imports_nothing_of_that_table(tmp_path: Path) -> None:
    good = json.dumps({"_id": "1", "name": "ok", "balance": 1})
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("testapp_account/documents.jsonl",
                         "\n".join([good, '{"_id": "2", "name": "x", "balance": "lots"}']))
    with pytest.raises(CommandError, match="testapp_account"):
        run("reactive_import", str(path), "--no-progress")
    assert Account.objects.count() == 0
    for content, message in [("not json", "not JSON"), ('{"name": "no id"}', "string '_id'"),
                             ("[1]", "string '_id'")]:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("testapp_account/documents.jsonl", content)
        with pytest.raises(CommandError, match=message):
            run("reactive_import", str(path), "--no-progress")


@pytest.mark.parametrize(("args", "message"), [
    (["missing.zip"], "does not exist"),
    (["{tmp}/junk.zip"], "not a readable ZIP"),
    (["{tmp}/empty.zip", "--table", "nope"], "no documents for nope"),
    (["{tmp}/other.zip"], "No exported table is called ghost"),
    (["{tmp}/one.jsonl"], "one --table"),
])
def test_malformed_imports_fail_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    (tmp_path / "one.jsonl").write_text("")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("ghost/documents.jsonl", "")
    with pytest.raises(CommandError, match=message):
        run("reactive_import", *[a.format(tmp=tmp_path) for a in args], "--no-progress")


def test_one_table_as_jsonl_and_csv(tmp_path: Path) -> None:
    seed()
    run("reactive_export", str(tmp_path / "notes.jsonl"), "--table", "testapp_note",
        "--no-progress")
    lines = (tmp_path / "notes.jsonl").read_text().splitlines()
    assert len(lines) == 2500 and json.loads(lines[0])["body"] == 'note 0 \u00e9\n"q"'
    run("reactive_export", str(tmp_path / "items.csv"), "--table", "testapp_item",
        "--no-progress")
    with (tmp_path / "items.csv").open() as handle:
        items = list(csv.DictReader(handle))
    assert [i["name"] for i in items] == ["lamp", "chair"]
    assert json.loads(items[0]["data"]) == {"tags": ["a", "b"], "n": 1.5}
    # And a JSONL file imports back into an emptied table
    Note.objects.all().delete()
    run("reactive_import", str(tmp_path / "notes.jsonl"), "--table", "testapp_note",
        "--no-progress")
    assert Note.objects.count() == 2500
    with pytest.raises(CommandError, match="exactly one --table"):
        run("reactive_export", str(tmp_path / "x.csv"))


def test_progress_bars_are_drawn_per_table(tmp_path: Path) -> None:
    seed()
    err = StringIO()
    call_command("reactive_export", str(tmp_path / "s.zip"), stdout=StringIO(), stderr=err)
    assert "testapp_note" in err.getvalue() and "2500/2500" in err.getvalue()
    assert set(exported_tables()) >= set(TABLES)
