"""ctx.db against a real Postgres: writes, reads, lookups, pagination, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from reactive.exceptions import DocumentError, ReadOnlyError
from reactive.functions.runtime import runtime
from reactive.models import Document, DocumentShape

pytestmark = pytest.mark.django_db(transaction=True)
P = "testapp/documents:"


def run(name: str, **args: Any) -> Any:
    return runtime.run(P + name, args)


def test_insert_get_patch_replace_delete() -> None:
    # Given
    doc_id = run("add_note", body="hi", tags=["x"])
    # When / Then
    doc = run("get", id=doc_id)
    assert doc["_id"] == doc_id and len(doc_id) == 32
    assert isinstance(doc["_creationTime"], float)
    assert {k: doc[k] for k in ("body", "tags", "pinned")} == {
        "body": "hi", "tags": ["x"], "pinned": False}
    run("patch", id=doc_id, fields={"pinned": True})
    assert run("get", id=doc_id)["pinned"] is True
    assert run("get", id=doc_id)["body"] == "hi"
    run("replace", id=doc_id, doc={"body": "new"})
    replaced = run("get", id=doc_id)
    assert replaced == {"_id": doc_id, "_creationTime": doc["_creationTime"], "body": "new"}
    run("delete", id=doc_id)
    assert run("get", id=doc_id) is None


def test_filters_ordering_and_slicing_use_document_fields() -> None:
    # Given
    ids = [run("add_note", body=f"n{i}", tags=["x"] if i % 2 else ["y"], pinned=i < 3)
           for i in range(6)]
    run("insert", table="other", doc={"pinned": True})
    # When
    pinned = run("pinned")
    tagged = run("tagged", tag="x")
    # Then
    assert [d["_id"] for d in pinned] == [ids[2], ids[1], ids[0]]
    assert [d["body"] for d in tagged] == ["n1", "n3", "n5"]


def test_paginate_walks_every_document_once() -> None:
    # Given
    ids = [run("add_note", body=f"n{i}", tags=[]) for i in range(5)]
    # When
    seen: list[str] = []
    cursor = None
    while True:
        result = run("page", pagination_opts={"numItems": 2, "cursor": cursor})
        seen += [d["_id"] for d in result["page"]]
        if result["isDone"]:
            break
        cursor = result["continueCursor"]
    # Then
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(("table", "doc", "code"), [
    ("1notes", {"a": 1}, "InvalidTableName"),
    ("no-dash", {"a": 1}, "InvalidTableName"),
    ("x" * 65, {"a": 1}, "InvalidTableName"),
    ("notes", [1, 2], "InvalidDocument"),
    ("notes", 5, "InvalidDocument"),
    ("notes", None, "InvalidDocument"),
    ("notes", {"_secret": 1}, "InvalidDocument"),
    ("notes", {"_id": "abc"}, "InvalidDocument"),
    ("notes", {"a": {"b": b"bytes"}}, "InvalidDocument"),
    ("notes", {"n": [2**53 + 1]}, "InvalidDocument"),
    ("notes", {"n": -(2**63)}, "InvalidDocument"),
    ("notes", {"body": "a\x00b"}, "InvalidDocument"),
    ("notes", {"body": {"\ud800": None}}, "InvalidDocument"),
    ("notes", {"tags": ["ok", "\udfff"]}, "InvalidDocument"),
    ("notes", {"big": "x" * 2_000_000}, "DocumentTooLarge"),
    ("notes", {"deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}, "DocumentTooDeep"),
])
def test_bad_input_is_refused_and_nothing_is_written(table: str, doc: Any, code: str) -> None:
    # When
    with pytest.raises(DocumentError) as caught:
        run("insert", table=table, doc=doc)
    # Then
    assert caught.value.code == code
    assert caught.value.data["code"] == code
    assert not Document.objects.exists() and not DocumentShape.objects.exists()


def test_numbers_read_back_as_written() -> None:
    # Given floats jsonb prints as integers (1e20 as 100000000000000000000), and exact integers
    doc_id = run("insert", table="notes", doc={"f": [1e20, -2.5e16, 2.0, 0.1],
                                               "i": [2**53, -(2**53), 7]})
    # Then the floats come back floats (encodable for every client), the integers integers
    doc = run("get", id=doc_id)
    assert [type(v) for v in doc["f"]] == [float, float, float, float]
    assert doc["f"] == [1e20, -2.5e16, 2.0, 0.1] and doc["i"] == [2**53, -(2**53), 7]
    assert [type(v) for v in doc["i"]] == [int, int, int]


def test_a_failing_mutation_leaves_nothing_half_written() -> None:
    with pytest.raises(DocumentError) as caught:
        run("insert_two_then_fail", table="notes")
    assert caught.value.field == "n"
    assert not Document.objects.exists()


def test_bad_ids_and_missing_documents() -> None:
    with pytest.raises(DocumentError) as caught:
        run("get", id="../etc")
    assert caught.value.code == "InvalidDocumentId"
    with pytest.raises(DocumentError) as caught:
        run("delete", id="0" * 32)
    assert caught.value.code == "DocumentNotFound"


def test_queries_cannot_write() -> None:
    with pytest.raises(ReadOnlyError):
        run("write_in_query")
    assert not Document.objects.exists()


def test_lookup_on_a_system_or_reserved_name_is_refused() -> None:
    from reactive.documents.query import DocumentQuery

    with pytest.raises(DocumentError):
        DocumentQuery("notes").filter(_secret=1)
    with pytest.raises(DocumentError):
        DocumentQuery("bad name")
