"""Tables moved into models (``DOCUMENTS_MODELS``): which model a table name now means, and a
model row seen as a document (``_id``, ``_creationTime`` and its other columns)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models

from reactive.conf import reactive_settings
from reactive.exceptions import DocumentError

SYSTEM = {"_id": "id", "_creationTime": "creation_time"}


def model_for(table: str) -> type[models.Model] | None:
    """The model ``table`` was moved into, or None while it is schema-free."""
    label = reactive_settings().DOCUMENTS_MODELS.get(table)
    if label is None:
        return None
    try:
        return apps.get_model(label)
    except LookupError:
        raise DocumentError(f"DOCUMENTS_MODELS maps {table!r} to {label!r}, which is not an "
                            "installed model.", code="InvalidTableName", table=table) from None


def routed_models() -> list[tuple[str, type[models.Model]]]:
    """Every moved table with its model."""
    return [(t, m) for t in reactive_settings().DOCUMENTS_MODELS
            if (m := model_for(t)) is not None]


def columns(model: type[models.Model]) -> dict[str, str]:
    """Document field name -> model attname, ``_id`` and ``_creationTime`` included: the
    fields named ``id`` and ``creation_time`` hold those, every other field the document field
    named as its column (a document field ``id`` may be a ``doc_id`` with ``db_column="id"``)."""
    out = {f.db_column or f.name: f.attname for f in model._meta.concrete_fields
           if f.name not in SYSTEM.values()}
    out.update({key: name for key, name in SYSTEM.items()})
    return out


def as_document(row: models.Model) -> dict[str, Any]:
    """A model row as a document; null columns are left out, as a missing field was."""
    doc: dict[str, Any] = {"_id": row.pk, "_creationTime": getattr(row, SYSTEM["_creationTime"])}
    for field in row._meta.concrete_fields:
        value = getattr(row, field.attname)
        if field.name not in SYSTEM.values() and value is not None:
            doc[field.db_column or field.name] = value
    return doc


def row_values(model: type[models.Model], table: str, data: dict[str, Any]) -> dict[str, Any]:
    """Document fields as keyword arguments of ``model``; DocumentError for an unknown one."""
    names = columns(model)
    out = {}
    for key, value in data.items():
        if key not in names or key in SYSTEM:
            raise DocumentError(f"{table!r} is stored in {model._meta.label}, which has no "
                                f"field {key!r}.", code="InvalidDocument", table=table,
                                field=key)
        out[names[key]] = value
    return out
