"""Shapes: widened per write (never by scanning), shown as JSON Schema and in the admin,
enforced on request, and turned into a Django model that accepts every stored document."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive.documents import modelgen, shape
from reactive.exceptions import DocumentError
from reactive.functions.runtime import runtime
from reactive.models import DocumentShape

P = "testapp/documents:"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8)
DOCS = st.lists(st.dictionaries(st.sampled_from(["a", "b", "class", "id", "x_y"]), JSON,
                                max_size=4), min_size=1, max_size=6)


def _schema(table: str) -> dict[str, Any]:
    row = DocumentShape.objects.get(pk=table)
    return shape.json_schema(row.shape, table)


def test_widen_tracks_types_optional_fields_nesting_and_arrays() -> None:
    node = shape.widen(None, {"body": "a", "tags": ["x"], "meta": {"n": 1}})
    node = shape.widen(node, {"body": None, "tags": [], "meta": {"n": 1.5, "c": "r"}, "new": 1})
    assert node["fields"]["body"] == {"optional": False,
                                      "shape": {"types": ["null", "string"]}}
    assert node["fields"]["new"]["optional"] is True
    assert node["fields"]["tags"]["shape"] == {"types": ["array"], "items": {"types": ["string"]}}
    meta = node["fields"]["meta"]["shape"]["fields"]
    assert meta["n"]["shape"]["types"] == ["integer", "number"]
    assert meta["c"]["optional"] is True
    schema = shape.json_schema(node, "notes")
    assert schema["properties"]["meta"]["properties"]["n"] == {"type": "number"}
    assert schema["required"] == ["_creationTime", "_id", "body", "meta", "tags"]


@pytest.mark.django_db(transaction=True)
def test_writes_widen_the_stored_shape_without_scanning_the_table() -> None:
    # Given a table with documents
    for i in range(3):
        runtime.run(P + "add_note", {"body": f"n{i}", "tags": ["x"]})
    # When one more document brings a new field
    with CaptureQueriesContext(connection) as seen:
        runtime.run(P + "insert", {"table": "notes", "doc": {"body": "z", "color": "red"}})
    # Then the shape knows it, and no statement read the documents of the table
    schema = _schema("notes")
    assert schema["properties"]["color"] == {"type": "string"}
    assert "color" not in schema["required"] and "tags" not in schema["required"]
    reads = [q["sql"] for q in seen.captured_queries
             if q["sql"].startswith("SELECT") and "reactive_document\"" in q["sql"]]
    assert reads == []


@pytest.mark.django_db(transaction=True)
def test_admin_shows_the_shape_and_its_json_schema() -> None:
    runtime.run(P + "add_note", {"body": "a", "tags": ["x"]})
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(admin)
    listing = browser.get("/admin/reactive/documentshape/").content.decode()
    assert "body: string" in listing and "tags: array" in listing
    detail = browser.get("/admin/reactive/documentshape/notes/change/").content.decode()
    assert "&quot;additionalProperties&quot;: false" in detail
    assert browser.get("/admin/reactive/document/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_enforce_refuses_writes_outside_the_shape_naming_the_field() -> None:
    # Given a shape, enforced
    doc_id = runtime.run(P + "add_note", {"body": "a", "tags": ["x"]})
    out = io.StringIO()
    call_command("reactive_schema", "notes", "--enforce", stdout=out)
    assert "enforced" in out.getvalue()
    # When writes break it, they are refused with the field named, and nothing is written
    cases = [({"body": 1, "tags": [], "pinned": False}, "body"),
             ({"body": "b", "tags": [2], "pinned": False}, "tags[0]"),
             ({"body": "b", "tags": [], "pinned": False, "extra": 1}, "extra"),
             ({"tags": [], "pinned": False}, "body")]
    for doc, field in cases:
        with pytest.raises(DocumentError) as caught:
            runtime.run(P + "insert", {"table": "notes", "doc": doc})
        assert caught.value.code == "ShapeViolation" and caught.value.field == field
    with pytest.raises(DocumentError):
        runtime.run(P + "patch", {"id": doc_id, "fields": {"pinned": "yes"}})
    # Then writes that fit still work, and --no-enforce lets the shape widen again
    runtime.run(P + "add_note", {"body": "b", "tags": []})
    call_command("reactive_schema", "notes", "--no-enforce", stdout=io.StringIO())
    runtime.run(P + "insert", {"table": "notes", "doc": {"body": 1}})
    assert _schema("notes")["properties"]["body"]["type"] == ["integer", "string"]


@pytest.mark.django_db(transaction=True)
def test_command_prints_json_schema_and_a_model_and_refuses_bad_names() -> None:
    runtime.run(P + "insert", {"table": "notes", "doc": {"body": "a", "n": 1, "ok": True,
                                                         "meta": {"x": 1}, "class": "c"}})
    runtime.run(P + "insert", {"table": "notes", "doc": {"body": "b", "n": 2.5, "ok": None,
                                                         "meta": {"x": 1}, "class": "d"}})
    runtime.run(P + "insert", {"table": "other", "doc": {"id": "x", "creation_time": 1,
                                                         "save": True, "a__b": 1, "a_b": 2}})
    out = io.StringIO()
    call_command("reactive_schema", "notes", stdout=out)
    assert '"title": "notes"' in out.getvalue()
    out = io.StringIO()
    call_command("reactive_schema", "notes", "--model", stdout=out)
    source = out.getvalue()
    assert "class Notes(models.Model):" in source
    assert "    body = models.TextField(blank=True)" in source
    assert "    n = models.FloatField()" in source
    assert "    ok = models.BooleanField(null=True, blank=True)" in source
    assert "    meta = models.JSONField(blank=True, decoder=DocumentDecoder)" in source
    assert "from reactive.models.documents import DocumentDecoder" in source
    assert "    doc_class = models.TextField(blank=True, db_column='class')" in source
    compile(source, "<model>", "exec")
    # And document fields the model's own names would clash with keep their columns
    out = io.StringIO()
    call_command("reactive_schema", "other", "--model", stdout=out)
    source = out.getvalue()
    assert ("    id = models.CharField(primary_key=True, max_length=32, db_column='_id')"
            in source)
    assert "    doc_id = models.TextField(blank=True, db_column='id')" in source
    assert "    doc_creation_time = models.BigIntegerField(db_column='creation_time')" in source
    assert "    doc_save = models.BooleanField(db_column='save')" in source
    assert "    a_b = models.BigIntegerField()" in source
    assert "    doc_a_b = models.BigIntegerField(db_column='a__b')" in source
    compile(source, "<model>", "exec")
    for bad in ("no such", "missing"):
        with pytest.raises(CommandError):
            call_command("reactive_schema", bad, stdout=io.StringIO())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=DOCS)
def test_the_generated_model_accepts_every_document_stored(docs: list[dict[str, Any]]) -> None:
    # Given the shape of every document written
    node: dict[str, Any] | None = None
    for doc in docs:
        node = shape.widen(node, doc)
    assert node is not None
    specs = modelgen.fields_for(node)
    fields = {spec.name: spec.build() for spec in specs}
    for i, doc in enumerate(docs):
        # When a document becomes a row of the generated model
        row = modelgen.row_for(specs, {"_id": f"{i:032d}", "_creationTime": 1.0, **doc})
        # Then every value is accepted by its field, and every field not in it may be null
        for name, value in row.items():
            fields[name].clean(value, None)
        for name, field in fields.items():
            if name not in row:
                assert field.null
        # And the enforced shape accepts it too
        assert shape.violation(node, doc) is None
