"""Moving a document table into a model: every document kept with its id and creation time,
in batches, each batch logged for live queries; a document the model cannot hold stops the move
at its batch, and a rerun carries on."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.core.management import CommandError, call_command

from reactive.documents import store
from reactive.exceptions import DocumentError
from reactive.functions.runtime import runtime
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


def test_migration_creates_the_model_and_its_operation_moves_the_documents(
        tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given documents of a table whose generated model is testapp.MovedNote
    for i in range(3):
        store.insert("moved_note", {"body": f"n{i}", "tags": ["x"], "pinned": None})
    (tmp_path / "gradual_mig").mkdir()
    (tmp_path / "gradual_mig" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"testapp": "gradual_mig"}
    # When the command writes the migration
    out = io.StringIO()
    call_command("reactive_schema", "moved_note", "--migration", "testapp", stdout=out)
    # Then it is a non-atomic migration after reactive's, creating the model, then moving
    written = tmp_path / "gradual_mig" / "0001_move_moved_note.py"
    assert str(written) in out.getvalue() and "class MovedNote(models.Model):" in out.getvalue()
    namespace: dict[str, Any] = {}
    exec(compile(written.read_text(), str(written), "exec"), namespace)
    migration = namespace["Migration"]
    assert migration.atomic is False
    assert any(app == "reactive" for app, _ in migration.dependencies)
    create, move = migration.operations
    assert create.name == "MovedNote"
    assert [name for name, _ in create.fields] == ["id", "creation_time", "body", "pinned",
                                                   "tags"]
    # And its data operation moves every document (the table itself exists in this test app)
    move.code(global_apps, None)
    assert sorted(MovedNote.objects.values_list("body", flat=True)) == ["n0", "n1", "n2"]
    assert not Document.objects.exists()


def test_functions_keep_working_against_the_model_after_the_move(settings: Any) -> None:
    # Given notes written schema-free, moved into testapp.MovedNote
    run = lambda name, **args: runtime.run(f"testapp/documents:{name}", args)  # noqa: E731
    first = run("add_note", body="a", tags=["x"], pinned=True)
    run("add_note", body="b", tags=["y"], pinned=False)
    call_command("reactive_schema", "notes", "--move", "testapp.MovedNote", stdout=io.StringIO())
    # When the table is routed to the model
    settings.REACTIVE = {**settings.REACTIVE, "DOCUMENTS_MODELS": {"notes": "testapp.MovedNote"}}
    # Then the same functions read and write the model's rows, ids kept
    assert [d["_id"] for d in run("pinned")] == [first]
    assert [d["body"] for d in run("tagged", tag="y")] == ["b"]
    third = run("add_note", body="c", tags=["x"], pinned=True)
    assert MovedNote.objects.get(pk=third).body == "c" and not Document.objects.exists()
    assert [d["body"] for d in run("pinned")] == ["c", "a"]
    run("patch", id=first, fields={"pinned": False})
    assert run("get", id=first)["pinned"] is False
    run("replace", id=first, doc={"body": "a2"})
    assert run("get", id=first) == {"_id": first, "_creationTime": run("get", id=first)[
        "_creationTime"], "body": "a2"}
    page = run("page", pagination_opts={"numItems": 2, "cursor": None})
    assert [d["body"] for d in page["page"]] == ["c", "b"]
    run("delete", id=third)
    assert not MovedNote.objects.filter(pk=third).exists()
    # And a field the model lacks is refused, naming it
    with pytest.raises(DocumentError) as caught:
        run("insert", table="notes", doc={"body": "d", "color": "red"})
    assert caught.value.field == "color"


def test_the_data_migration_runner_moves_documents_in_batches_keeping_ids() -> None:
    # Given documents of moved_note and a @migration whose body is move_document
    ids = [store.insert("moved_note", {"body": f"n{i}", "tags": [i]}) for i in range(5)]
    store.insert("notes", {"body": "stays"})
    # When the runner runs it inline (batches of 2, each one SERIALIZABLE mutation)
    out = io.StringIO()
    call_command("reactive_migrations", "run", "testapp:move_moved_notes", "--inline", stdout=out)
    # Then every document is a row with its id, and only the other table's document is left
    assert sorted(MovedNote.objects.values_list("id", flat=True)) == sorted(ids)
    assert list(Document.objects.values_list("table", flat=True)) == ["notes"]
