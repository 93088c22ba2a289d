"""The queryset-like reader of one document table: ``ctx.db.table("notes").filter(...)``.

Lookups and orderings name document fields with Django's syntax (``tags__contains=["x"]``,
``meta__color="red"``, ``-_creationTime``) and become JSONField lookups on ``data``, so the
SQL is Django's own and the read set recorder sees it like any other query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.db.models import Model, Q, QuerySet

from reactive.documents import routes
from reactive.documents.validation import as_document, check_table
from reactive.exceptions import DocumentError
from reactive.models import Document

SYSTEM_COLUMNS = {"_id": "id", "_creationTime": "creation_time"}
Paginator = Callable[[QuerySet[Any], Mapping[str, Any]], dict[str, Any]]


def field_path(name: str, table: str, model: type[Model] | None = None) -> str:
    """The ORM path of a document lookup: ``_id`` / ``_creationTime``, ``data__<name>``, or
    the column of a table moved into ``model``."""
    head, _, rest = name.partition("__")
    if head in SYSTEM_COLUMNS:
        return SYSTEM_COLUMNS[head] + (f"__{rest}" if rest else "")
    names = routes.columns(model) if model is not None else None
    if (not head or head.startswith("_") or head == "pk"
            or (names is not None and head not in names)):
        raise DocumentError(f"Cannot filter or order {table!r} documents by {name!r}: name a "
                            "document field, '_id' or '_creationTime'.",
                            code="InvalidDocument", table=table, field=name)
    if names is not None:
        return names[head] + (f"__{rest}" if rest else "")
    return f"data__{name}"


class DocumentQuery:
    """An immutable, lazily evaluated selection of documents; slicing or iterating reads it.

    ``filter``/``exclude`` take Django lookups on document fields, ``order_by`` their names
    (default ``_creationTime``; ``_id`` is appended to make every order total).
    """

    def __init__(self, table: str, queryset: QuerySet[Any] | None = None,
                 paginator: Paginator | None = None) -> None:
        self.table = check_table(table)
        self._model = routes.model_for(table)
        if queryset is None:
            queryset = (Document.objects.filter(table=table) if self._model is None
                        else self._model._default_manager.all()).order_by("creation_time", "id")
        self._qs = queryset
        self._paginator = paginator

    def _with(self, queryset: QuerySet[Any]) -> DocumentQuery:
        return DocumentQuery(self.table, queryset, self._paginator)

    def _doc(self, row: Any) -> dict[str, Any]:
        if self._model is not None:
            return routes.as_document(row)
        return as_document(row.id, row.creation_time, row.data)

    def filter(self, *args: Q, **lookups: Any) -> DocumentQuery:
        return self._with(self._qs.filter(*args, **self._lookups(lookups)))

    def exclude(self, **lookups: Any) -> DocumentQuery:
        return self._with(self._qs.exclude(**self._lookups(lookups)))

    def order_by(self, *names: str) -> DocumentQuery:
        paths = []
        for name in names:
            if not isinstance(name, str) or not name.lstrip("-"):
                raise DocumentError(f"order_by takes field names, not {name!r}.",
                                    code="InvalidDocument", table=self.table)
            sign = "-" if name.startswith("-") else ""
            paths.append(sign + field_path(name.lstrip("-"), self.table, self._model))
        if not any(p.lstrip("-") == "id" for p in paths):
            paths.append(("-" if paths and paths[-1].startswith("-") else "") + "id")
        return self._with(self._qs.order_by(*paths))

    def _lookups(self, lookups: Mapping[str, Any]) -> dict[str, Any]:
        return {field_path(name, self.table, self._model): value
                for name, value in lookups.items()}

    @property
    def queryset(self) -> QuerySet[Any]:
        """The Django queryset: :class:`~reactive.models.Document` rows, or the model's."""
        return self._qs

    def _complete(self) -> None:
        """Refuse to read a moved table while documents of it are still schema-free (a move
        not finished, or documents written by servers without DOCUMENTS_MODELS): the rows
        alone would be part of the table, silently. The check is read like any other read,
        so a live query re-runs, and answers, once the move has taken the last of them."""
        if self._model is not None and Document.objects.filter(table=self.table).exists():
            raise DocumentError(
                f"{self.table!r} is routed to {self._model._meta.label} (DOCUMENTS_MODELS) but "
                "some of its documents are still schema-free; finish the move with "
                f"`manage.py reactive_schema {self.table} --move {self._model._meta.label}`.",
                code="MoveInProgress", table=self.table)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._complete()
        return (self._doc(row) for row in self._qs.iterator())

    def __getitem__(self, item: int | slice) -> Any:
        self._complete()
        if isinstance(item, slice):
            return [self._doc(row) for row in self._qs[item]]
        return self._doc(self._qs[item])

    def collect(self) -> list[dict[str, Any]]:
        return list(self)

    def take(self, n: int) -> list[dict[str, Any]]:
        return self[:n]  # type: ignore[no-any-return]

    def first(self) -> dict[str, Any] | None:
        rows = self[:1]
        return rows[0] if rows else None

    def count(self) -> int:
        self._complete()
        return self._qs.count()

    def paginate(self, pagination_opts: Mapping[str, Any]) -> dict[str, Any]:
        """A reactive page (see ``ctx.paginate``); order by ``_creationTime`` or ``_id`` only."""
        if self._paginator is None:
            raise DocumentError("paginate() needs the query's ctx; use ctx.db.table(...).",
                                code="InvalidDocument", table=self.table)
        self._complete()
        result = self._paginator(self._qs, pagination_opts)
        result["page"] = [self._doc(row) for row in result["page"]]
        return result
