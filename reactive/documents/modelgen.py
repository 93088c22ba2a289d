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

    def arguments(self) -> str:
        """The options as Python source (the decoder by name: the module imports it)."""
        return ", ".join(f"{k}={v if k == 'decoder' else repr(v)}"
                         for k, v in self.options.items())

    def source(self) -> str:
        return f"    {self.name} = models.{self.kind}({self.arguments()})"

    def build(self) -> Any:
        from django.db import models

        from reactive.models.documents import DocumentDecoder

        options = {k: DocumentDecoder if k == "decoder" else v for k, v in self.options.items()}
        return getattr(models, self.kind)(**options)


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
    """The model fields for a table's shape, the two system columns first.

    A document field whose name is no valid attribute (a keyword, ``__``, a trailing ``_``,
    a name the model already uses) gets another attribute name and keeps its name as the
    column; when a document field is itself named ``id`` or ``creation_time``, the system
    columns are named ``_id`` and ``_creationTime`` so the two never clash."""
    names = sorted(node.get("fields", {}))
    clash = bool({"id", "creation_time"} & set(names))
    specs = [FieldSpec("id", "CharField", {"primary_key": True, "max_length": 32,
                                            **({"db_column": "_id"} if clash else {})}),
             FieldSpec("creation_time", "FloatField", {
                 "db_index": True, **({"db_column": "_creationTime"} if clash else {})})]
    taken = {"id", "creation_time"} | {n for n in names if _plain_attr(n)}
    for name in names:
        entry = node["fields"][name]
        types = set(entry["shape"]["types"])
        nullable = entry["optional"] or "null" in types
        types.discard("null")
        kind = _SCALARS.get(frozenset(types), "JSONField")
        options: dict[str, Any] = {}
        if nullable:
            options = {"null": True, "blank": True}
        if kind in ("TextField", "JSONField"):
            options["blank"] = True  # "", [] and {} are values documents may hold
        if kind == "JSONField":  # read numbers back as documents do (1e20 stays a float)
            options["decoder"] = "DocumentDecoder"
        attr = name
        if not _plain_attr(name):
            attr = _free_attr(name, taken)
            options["db_column"] = name
        specs.append(FieldSpec(attr, kind, options))
    return specs


def _plain_attr(name: str) -> bool:
    from django.db import models

    return not (keyword.iskeyword(name) or name in _RESERVED or "__" in name
                or name.endswith("_") or not name.isidentifier()
                or hasattr(models.Model, name))  # save, delete, check, ...


def _free_attr(name: str, taken: set[str]) -> str:
    base = "doc_" + ("_".join(part for part in name.split("_") if part) or "field")
    if not base.isidentifier():
        base = "doc_field"
    attr, n = base, 2
    while attr in taken:
        attr, n = f"{base}_{n}", n + 1
    taken.add(attr)
    return attr


def model_source(table: str, node: Node, db_table: str | None = None) -> str:
    """Python source of a model class for ``table`` (imports included)."""
    specs = fields_for(node)
    lines = ["from django.db import models", "", *_decoder_import(specs), "",
             f"class {class_name(table)}(models.Model):",
             f'    """Moved from the schema-free table {table!r} (reactive_schema --model)."""',
             ""]
    lines += [spec.source() for spec in specs]
    lines += ["", "    class Meta:", '        ordering = ["creation_time", "id"]']
    if db_table:
        lines.append(f"        db_table = {db_table!r}")
    return "\n".join(lines) + "\n"


def _decoder_import(specs: list[FieldSpec]) -> list[str]:
    if any("decoder" in spec.options for spec in specs):
        return ["from reactive.models.documents import DocumentDecoder", ""]
    return []


def row_for(specs: list[FieldSpec], document: dict[str, Any]) -> dict[str, Any]:
    """A document as keyword arguments of the generated model."""
    by_column = {spec.options.get("db_column", spec.name): spec.name for spec in specs[2:]}
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
    specs = fields_for(node)
    # serialize=False on the primary key, as makemigrations writes it (else it sees a change)
    specs[0] = FieldSpec("id", "CharField", {**specs[0].options, "serialize": False})
    fields = "\n".join(f"{' ' * 16}({spec.name!r}, models.{spec.kind}({spec.arguments()})),"
                       for spec in specs)
    imports = "".join(line + "\n" for line in _decoder_import(specs)[:1])
    deps = "\n".join(f"        ({a!r}, {m!r})," for a, m in dependencies)
    return f'''"""Creates {name} from the schema-free table {table!r} and moves its documents in
(written by reactive_schema {table} --migration {app_label})."""

from django.db import migrations, models

from reactive.documents.move import migration_operation
{imports}

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
