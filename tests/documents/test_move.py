"""Moving a document table into a model: every document kept with its id and creation time,
in batches, each batch logged for live queries; a document the model cannot hold stops the move
at its batch, and a rerun carries on."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from reactive.documents import store
from reactive.models import Document
from tests.support.changelog import changes_after, last_change_id
from tests.testapp.models import MovedNote

pytestmark = pytest.mark.django_db(transaction=True)


def test_move_keeps_every_document_in_batches_and_logs_both_sides() -> None:
    # Given notes written schema-free, and one document of another table
    ids = [store.insert("notes", {"body": f"n{i}", "tags": ["x"] * i, "pinned": i % 2 == 0})
           for i in range(5)]
    store.insert("notes", {"body": "sparse"})
    store.insert("other", {"body": "stays"})
    before = {d.id: d for d in Document.objects.filter(table="notes")}
    mark = last_change_id()
    # When they are moved two at a time
    out = io.StringIO()
    call_command("reactive_schema", "notes", "--move", "testapp.MovedNote", "--batch-size", "2",
                 stdout=out)
    # Then every document is a row with its id, creation time and fields
    assert "Moved 6 documents" in out.getvalue() and "moved 2 documents" in out.getvalue()
    rows = {r.id: r for r in MovedNote.objects.all()}
    assert set(rows) == set(before) and set(ids) <= set(rows)
    for doc_id, doc in before.items():
        assert rows[doc_id].creation_time == doc.creation_time
        assert rows[doc_id].body == doc.data["body"]
        assert rows[doc_id].tags == doc.data.get("tags")
    assert list(Document.objects.values_list("table", flat=True)) == ["other"]
    # And the change log saw every row leave one table and arrive in the other
    changes = changes_after(mark)
    assert sum(1 for c in changes if c.table == "reactive_document" and c.op == "D") == 6
    assert sum(1 for c in changes if c.table == MovedNote._meta.db_table and c.op == "I") == 6


def test_a_document_the_model_cannot_hold_stops_the_move_at_its_batch() -> None:
    # Given a document with a field the model lacks, after two that fit
    store.insert("notes", {"body": "a"})
    store.insert("notes", {"body": "b"})
    bad = store.insert("notes", {"body": "c", "color": "red"})
    # When moved one at a time
    with pytest.raises(CommandError, match="'color'"):
        call_command("reactive_schema", "notes", "--move", "testapp.MovedNote",
                     "--batch-size", "1", stdout=io.StringIO())
    # Then the batches before it moved, it stayed, and a rerun after fixing it finishes
    assert MovedNote.objects.count() == 2
    assert list(Document.objects.values_list("id", flat=True)) == [bad]
    store.replace(bad, {"body": "c"})
    call_command("reactive_schema", "notes", "--move", "testapp.MovedNote", stdout=io.StringIO())
    assert MovedNote.objects.count() == 3 and not Document.objects.exists()


@pytest.mark.parametrize("args", [["--move", "nosuch.Model"], ["--move", "bad"],
                                  ["--move", "testapp.MovedNote", "--batch-size", "0"]])
def test_bad_move_arguments_are_refused(args: list[str]) -> None:
    store.insert("notes", {"body": "a"})
    with pytest.raises(CommandError):
        call_command("reactive_schema", "notes", *args, stdout=io.StringIO())
    assert Document.objects.count() == 1
