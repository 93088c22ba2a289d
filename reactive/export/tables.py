"""Exported tables: which tracked tables export and import, their JSON Schemas, and how a row
image (``to_jsonb`` of the row, as the change log stores it) becomes a Convex document."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import connections, models
from django.db.models import Model

from reactive.capture.catalog import TRIGGER_KINDS, relkinds_cached
from reactive.capture.triggers import tracked_models
from reactive.exceptions import BadRequest

# Django field classes whose JSON images are numbers, integers or booleans; the rest are
# strings (text, dates, UUIDs, decimals as text would be wrong: to_jsonb keeps numerics).
_INTEGER = (models.IntegerField, models.AutoField, models.BigAutoField, models.SmallAutoField)
_NUMBER = (models.FloatField, models.DecimalField)


@dataclass(frozen=True)
class Table:
    """One exported table: its Convex name (the database table), model and primary key."""

    name: str
    model: type[Model]

    @cached_property
    def pk(self) -> str:
        return str(self.model._meta.pk.column)

    @cached_property
    def pk_type(self) -> str:
        """The key column's SQL type, to compare keys read back from JSON images."""
        return str(self.model._meta.pk.db_type(connections["default"]))

    @cached_property
    def created_column(self) -> str | None:
        for field in self.model._meta.concrete_fields:
            if isinstance(field, models.DateTimeField) and field.auto_now_add:
                return str(field.column)
        return None

    def document(self, image: dict[str, Any], ts: int | None = None) -> dict[str, Any]:
        """A row image as a document: ``_id``, ``_creationTime`` (ms, if the model records
        creation), the other columns as stored, then ``_ts`` when given."""
        doc: dict[str, Any] = {"_id": str(image[self.pk])}
        if self.created_column and image.get(self.created_column):
            created = datetime.datetime.fromisoformat(image[self.created_column])
            doc["_creationTime"] = created.timestamp() * 1000
        doc.update((k, v) for k, v in image.items() if k != self.pk)
        if ts is not None:
            doc["_ts"] = ts
        return doc

    def schema(self, *, delta: bool = False) -> dict[str, Any]:
        """The JSON Schema of this table's documents (with ``_ts``/``_deleted`` for deltas)."""
        properties: dict[str, Any] = {"_id": {"type": "string"}}
        if self.created_column:
            properties["_creationTime"] = {"type": "number"}
        for field in self.model._meta.concrete_fields:
            if field.column != self.pk:
                properties[str(field.column)] = _field_schema(field)
        if delta:
            properties["_ts"] = {"type": "integer"}
            properties["_deleted"] = {"type": "boolean"}
        return {"type": "object", "properties": properties, "additionalProperties": False}


def _field_schema(field: models.Field[Any, Any]) -> dict[str, Any]:
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.BooleanField):
        kind = "boolean"
    elif isinstance(field, _INTEGER) or (
        isinstance(field, models.ForeignKey) and isinstance(field.target_field, _INTEGER)
    ):
        kind = "integer"
    elif isinstance(field, _NUMBER):
        kind = "number"
    else:
        kind = "string"
    return {"type": [kind, "null"]} if field.null else {"type": kind}


def exported_tables(using: str = "default") -> dict[str, Table]:
    """Tracked tables with a one-column primary key, by name (sorted). Views and relations
    not created yet are left out: only ordinary tables hold documents to export or import."""
    candidates = {}
    for model in tracked_models():
        pk = model._meta.pk
        if pk is None or getattr(pk, "column", None) is None:
            continue  # a composite key has no single _id
        candidates[model._meta.db_table] = Table(model._meta.db_table, model)
    with connections[using].cursor() as cursor:
        kinds = relkinds_cached(cursor, candidates)
    return {name: candidates[name] for name in sorted(candidates)
            if kinds.get(name) in TRIGGER_KINDS}


def table_named(name: str) -> Table:
    """The exported table called ``name``; BadRequest (404) naming the known ones otherwise."""
    tables = exported_tables()
    if name not in tables:
        known = ", ".join(tables) or "none"
        raise BadRequest(
            f"No exported table is called {name!r}; exported tables: {known}.",
            code="TableNotFound", http_status=404,
        )
    return tables[name]
