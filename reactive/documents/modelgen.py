"""A Django model for a document table's shape: one column per top-level field, typed from
the JSON types seen (anything mixed or nested stays JSON), nullable when optional or null was
seen; ``id`` and ``creation_time`` keep each document's ``_id`` and ``_creationTime``."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from typing import Any

from reactive.documents.shape import Node


@dataclass(frozen=True)
class FieldSpec:
    """One model field: ``name = models.<kind>(**options)``."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def source(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"    {self.name} = models.{self.kind}({args})"

    def build(self) -> Any:
        from django.db import models

        return getattr(models, self.kind)(**self.options)


_SCALARS = {
    frozenset({"string"}): "TextField",
    frozenset({"boolean"}): "BooleanField",
    frozenset({"integer"}): "BigIntegerField",
    frozenset({"number"}): "FloatField",
    frozenset({"integer", "number"}): "FloatField",
}
_RESERVED = {"id", "pk", "creation_time", "objects"}


def class_name(table: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in table.split("_") if part) or "Doc"


def fields_for(node: Node) -> list[FieldSpec]:
    """The model fields for a table's shape, the two system columns first."""
    specs = [FieldSpec("id", "CharField", {"primary_key": True, "max_length": 32}),
             FieldSpec("creation_time", "FloatField", {"db_index": True})]
    for name, entry in sorted(node.get("fields", {}).items()):
        types = set(entry["shape"]["types"])
        nullable = entry["optional"] or "null" in types
        types.discard("null")
        kind = _SCALARS.get(frozenset(types), "JSONField")
        options: dict[str, Any] = {}
        if nullable:
            options = {"null": True, "blank": True}
        if kind in ("TextField", "JSONField"):
            options["blank"] = True  # "", [] and {} are values documents may hold
        attr = name
        if keyword.iskeyword(name) or name in _RESERVED or "__" in name or name.endswith("_"):
            attr = f"doc_{name.strip('_')}"
            options["db_column"] = name
        specs.append(FieldSpec(attr, kind, options))
    return specs


def model_source(table: str, node: Node, db_table: str | None = None) -> str:
    """Python source of a model class for ``table`` (imports included)."""
    lines = ["from django.db import models", "", "",
             f"class {class_name(table)}(models.Model):",
             f'    """Moved from the schema-free table {table!r} (reactive_schema --model)."""',
             ""]
    lines += [spec.source() for spec in fields_for(node)]
    lines += ["", "    class Meta:", '        ordering = ["creation_time", "id"]']
    if db_table:
        lines.append(f"        db_table = {db_table!r}")
    return "\n".join(lines) + "\n"


def row_for(specs: list[FieldSpec], document: dict[str, Any]) -> dict[str, Any]:
    """A document as keyword arguments of the generated model."""
    by_column = {spec.options.get("db_column", spec.name): spec.name for spec in specs}
    row = {"id": document["_id"], "creation_time": document["_creationTime"]}
    for key, value in document.items():
        if key not in ("_id", "_creationTime"):
            row[by_column[key]] = value
    return row


def migration_source(table: str, node: Node, app_label: str,
                     dependencies: list[tuple[str, str]], batch_size: int = 500) -> str:
    """A migration that creates the model for ``table`` in ``app_label`` and moves every
    document into it in batches (non-atomic, so each batch commits and a rerun resumes)."""
    name = class_name(table)
    fields = "\n".join(f"                ({spec.name!r}, models.{spec.kind}("
                       + ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) + ")),"
                       for spec in fields_for(node))
    deps = "\n".join(f"        ({a!r}, {m!r})," for a, m in dependencies)
    return f'''"""Creates {name} from the schema-free table {table!r} and moves its documents in
(written by reactive_schema {table} --migration {app_label})."""

from django.db import migrations, models

from reactive.documents.move import migration_operation


class Migration(migrations.Migration):
    atomic = False  # each batch of the move commits on its own: a stopped move resumes

    dependencies = [
{deps}
    ]

    operations = [
        migrations.CreateModel(
            name={name!r},
            fields=[
{fields}
            ],
            options={{"ordering": ["creation_time", "id"]}},
        ),
        migration_operation({table!r}, {f"{app_label}.{name}"!r}, batch_size={batch_size!r}),
    ]
'''
