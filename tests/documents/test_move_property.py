"""Property: for any documents stored, the model generated from the table's tracked shape
accepts every one of them in PostgreSQL, and the move keeps every document (its id, creation
time and every value, exactly) and leaves none behind.

Each example stores documents with ``ctx.db``'s store, builds the generated model (the fields
``reactive_schema --model`` prints and ``--migration`` creates) in an isolated app registry,
creates its table, moves in small batches and compares. Bounded in ``make test``
(``REACTIVE_MOVE_EXAMPLES``, default 30); raise it to search harder.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import connection, models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive.documents import modelgen, move, routes, store
from reactive.models import Document, DocumentShape

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("REACTIVE_MOVE_EXAMPLES", "30"))
TABLE = "prop_notes"
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")  # what Postgres JSON can hold
JSON = st.recursive(
    st.none() | st.booleans()
    | st.integers(-2**53, 2**53) | st.integers(-100, 100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0**53, 1e300, 0.5])
    | st.text(TEXT, max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(TEXT, max_size=3), inner, max_size=3),
    max_leaves=6)
# Field names include ones the generated model renames (class, id, x__y, trailing _)
DOCS = st.lists(st.dictionaries(st.sampled_from(["body", "n", "class", "id", "x__y", "tag_"]),
                                JSON, max_size=4), min_size=1, max_size=8)
_names = itertools.count()


def same(a: Any, b: Any) -> bool:
    """Equal as a Convex client would see them: a bool is never a number, numbers compare
    exactly (``1 == 1.0``, as JSON sends both), arrays in order, objects by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b and (math.copysign(1, a) == math.copysign(1, b) or a != 0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def generated_model(shape: dict[str, Any]) -> type[models.Model]:
    """The model ``reactive_schema --model`` would print for ``shape``, in its own registry."""
    name = f"prop_move_{os.getpid()}_{next(_names)}"
    meta = type("Meta", (), {"app_label": "testapp", "db_table": name, "apps": Apps(),
                             "ordering": ["creation_time", "id"]})
    attrs: dict[str, Any] = {"__module__": __name__, "Meta": meta}
    attrs.update({spec.name: spec.build() for spec in modelgen.fields_for(shape)})
    return type(modelgen.class_name(name), (models.Model,), attrs)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(docs=DOCS, batch_size=st.integers(1, 4))
def test_the_generated_model_holds_every_stored_document_and_the_move_keeps_them(
        docs: list[dict[str, Any]], batch_size: int) -> None:
    # Given documents stored schema-free (each example starts from an empty table)
    Document.objects.filter(table=TABLE).delete()
    DocumentShape.objects.filter(pk=TABLE).delete()
    stored = {}
    for doc in docs:
        doc_id = store.insert(TABLE, doc)
        stored[doc_id] = store.get(doc_id)
    # And the model generated from the shape tracked while they were written
    model = generated_model(DocumentShape.objects.get(pk=TABLE).shape)
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        # When they are moved into it
        moved = move.move_documents(TABLE, model, batch_size=batch_size)
        # Then PostgreSQL accepted every one, none is left behind, and each row reads back as
        # the document it was: same id, creation time and values (a null field reads back as
        # missing, as DOCUMENTS_MODELS documents it)
        assert moved == len(docs)
        assert not Document.objects.filter(table=TABLE).exists()
        rows = {row.pk: routes.as_document(row) for row in model._default_manager.all()}
        assert rows.keys() == stored.keys()
        for doc_id, before in stored.items():
            assert before is not None
            expected = {k: v for k, v in before.items() if v is not None}
            assert same(rows[doc_id], expected), (before, rows[doc_id])
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)
