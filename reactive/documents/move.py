"""Moving a document table into a Django model's table, batch by batch, keeping ids.

Each batch is one transaction that inserts the model rows and deletes the documents, so an
interrupted move loses nothing and a rerun carries on with what is left. Both writes are
tracked, so live queries over either side re-run as the rows move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models, transaction

from reactive.documents import routes
from reactive.documents.validation import check_table
from reactive.exceptions import DocumentError


def move_documents(table: str, model: type[models.Model], *, batch_size: int = 500,
                   document_model: type[models.Model] | None = None,
                   progress: Callable[[int], None] | None = None) -> int:
    """Move every document of ``table`` into ``model``; returns how many moved.

    ``model`` needs a ``CharField`` primary key ``id`` (the document ids) and a column per
    document field (``reactive_schema TABLE --model`` prints one). ``document_model``: the
    Document model to read (a migration passes its historical one).
    """
    check_table(table)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    from reactive.models import Document

    documents: Any = (document_model or Document)._default_manager
    columns = routes.columns(model)
    moved = 0
    while True:
        with transaction.atomic():
            batch = list(documents.select_for_update().filter(table=table)
                         .order_by("creation_time", "id")[:batch_size])
            if not batch:
                return moved
            model._default_manager.bulk_create([_row(model, columns, doc) for doc in batch])
            documents.filter(pk__in=[doc.pk for doc in batch]).delete()
        moved += len(batch)
        if progress is not None:
            progress(moved)


def move_document(doc: Any, model: type[models.Model]) -> None:
    """Move one Document row into ``model`` (insert the row, delete the document), in the
    caller's transaction: the body of a ``@migration`` over
    ``Document.objects.filter(table=...)``, so the data-migration runner batches, resumes and
    reports the move (docs/guides/documents.md)."""
    columns = routes.columns(model)
    _row(model, columns, doc).save(force_insert=True)
    type(doc)._default_manager.filter(pk=doc.pk).delete()


def _row(model: type[models.Model], columns: dict[str, str], doc: Any) -> models.Model:
    values = {"_id": doc.id, "_creationTime": doc.creation_time, **doc.data}
    row = {}
    for key, value in values.items():
        if key not in columns:
            raise DocumentError(
                f"Document {doc.id} of {doc.table!r} has field {key!r}, which "
                f"{model._meta.label} has no column for; add the field to the model (or "
                "regenerate it with reactive_schema --model) and move again.",
                code="InvalidDocument", table=doc.table, field=key)
        row[columns[key]] = value
    return model(**row)


def migration_operation(table: str, model_label: str, batch_size: int = 500) -> Any:
    """A ``RunPython`` that moves ``table`` into ``model_label`` (``"app.Model"``) with the
    migration's historical models; put it in a migration with ``atomic = False`` so each batch
    commits on its own (resumable)."""
    from django.db import migrations

    def forward(apps: Any, schema_editor: Any) -> None:
        move_documents(table, apps.get_model(model_label), batch_size=batch_size,
                       document_model=apps.get_model("reactive", "Document"))

    return migrations.RunPython(forward, migrations.RunPython.noop)
