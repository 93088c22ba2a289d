"""Writes to document tables (insert, patch, replace, delete) and reads by id, each keeping
the table's shape: widened by a document that brings something new, enforced when asked.

Everything is validated before the first statement, and runs in the caller's transaction (a
mutation's), so a rejected write leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Model

from reactive.documents import routes, shape
from reactive.documents.validation import (
    SYSTEM_FIELDS,
    as_document,
    check_document,
    check_id,
    check_table,
    creation_time,
    new_id,
)
from reactive.exceptions import DocumentError
from reactive.models import Document, DocumentShape


def insert(table: str, value: Mapping[str, Any]) -> str:
    """Store a new document in ``table``; returns its id."""
    table = check_table(table)
    if isinstance(value, Mapping) and any(name in value for name in SYSTEM_FIELDS):
        raise DocumentError(f"A new {table!r} document cannot set _id or _creationTime.",
                            code="InvalidDocument", table=table, field="_id")
    data = check_document(table, value)
    model = routes.model_for(table)
    if model is not None:  # moved into a model: a row of it, with a document id
        row_id = new_id()
        model._default_manager.create(id=row_id, creation_time=creation_time(),
                                      **routes.row_values(model, table, data))
        return row_id
    observe(table, data)
    row = Document.objects.create(id=new_id(), table=table, creation_time=creation_time(),
                                  data=data)
    return row.id


def get(doc_id: str) -> dict[str, Any] | None:
    """The document with id ``doc_id`` (in a schema-free table or a moved one), or None."""
    row = Document.objects.filter(pk=check_id(doc_id)).first()
    if row is not None:
        return as_document(row.id, row.creation_time, row.data)
    for _table, model in routes.routed_models():
        moved = model._default_manager.filter(pk=doc_id).first()
        if moved is not None:
            return routes.as_document(moved)
    return None


def patch(doc_id: str, fields: Mapping[str, Any]) -> None:
    """Set ``fields`` on the document (others stay)."""
    row = _existing(doc_id)
    if not isinstance(fields, Mapping):
        raise DocumentError("patch() takes an object of fields to set.", code="InvalidDocument",
                            table=row.table)
    _write(row, {**row.data, **_without_system(row, fields)})


def replace(doc_id: str, value: Mapping[str, Any]) -> None:
    """Replace the document's fields with ``value`` (its id and creation time stay)."""
    row = _existing(doc_id)
    if not isinstance(value, Mapping):
        raise DocumentError("replace() takes a document (a dict).", code="InvalidDocument",
                            table=row.table)
    _write(row, dict(_without_system(row, value)))


def delete(doc_id: str) -> None:
    row = _existing(doc_id)
    row.queryset.delete()


def observe(table: str, data: dict[str, Any]) -> None:
    """Check ``data`` against an enforced shape, or widen the shape to include it."""
    current = DocumentShape.objects.filter(pk=table).first()
    if current is not None and current.enforced:
        problem = shape.violation(current.shape, data)
        if problem:
            field = problem.split("'")[1] if "'" in problem else None
            raise DocumentError(f"A {table!r} document does not fit its enforced shape: "
                                f"{problem}.", code="ShapeViolation", table=table, field=field)
        return
    widened = shape.widen(current.shape if current else None, data)
    if current is None:
        DocumentShape.objects.create(table=table, shape=widened)
    elif widened != current.shape:
        current.shape = widened
        current.save(update_fields=["shape", "updated_at"])


@dataclass
class _Found:
    """A document to change: a Document row, or a row of the model its table moved into."""

    id: str
    table: str
    creation_time: float
    data: dict[str, Any]
    queryset: Any
    model: type[Model] | None = None


def _existing(doc_id: str) -> _Found:
    row = Document.objects.filter(pk=check_id(doc_id)).first()
    if row is not None:
        return _Found(row.id, row.table, row.creation_time, row.data,
                      Document.objects.filter(pk=row.pk))
    for table, model in routes.routed_models():
        moved = model._default_manager.filter(pk=doc_id).first()
        if moved is not None:
            doc = routes.as_document(moved)
            data = {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS}
            return _Found(doc_id, table, doc["_creationTime"], data,
                          model._default_manager.filter(pk=doc_id), model)
    raise DocumentError(f"No document with id {doc_id!r}.", code="DocumentNotFound")


def _without_system(row: _Found, value: Mapping[str, Any]) -> dict[str, Any]:
    if value.get("_id", row.id) != row.id or value.get("_creationTime",
                                                       row.creation_time) != row.creation_time:
        raise DocumentError(f"_id and _creationTime of a {row.table!r} document cannot change.",
                            code="InvalidDocument", table=row.table, field="_id")
    return {k: v for k, v in value.items() if k not in SYSTEM_FIELDS}


def _write(row: _Found, value: dict[str, Any]) -> None:
    data = check_document(row.table, value)
    if row.model is not None:
        cleared = {name: None for key, name in routes.columns(row.model).items()
                   if key not in SYSTEM_FIELDS and name not in ("id", "creation_time")}
        row.queryset.update(**{**cleared, **routes.row_values(row.model, row.table, data)})
        return
    observe(row.table, data)
    row.queryset.update(data=data)
