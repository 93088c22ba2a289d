"""``ctx.db``: schema-free document tables for queries (read) and mutations (read and write).

The store itself is :mod:`reactive.documents`; this module binds it to a function's context
(pagination journal, read-only queries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db.models import QuerySet

from reactive.documents import store
from reactive.documents.query import DocumentQuery
from reactive.exceptions import ReadOnlyError

PageFn = Callable[[QuerySet[Any], Mapping[str, Any]], Any]


class QueryDb:
    """``ctx.db`` in a query: ``table(name)`` (a reader) and ``get(id)``."""

    def __init__(self, paginate: PageFn) -> None:
        self._paginate = paginate

    def table(self, name: str) -> DocumentQuery:
        return DocumentQuery(name, paginator=self._page)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return store.get(doc_id)

    def _page(self, queryset: QuerySet[Any], opts: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._paginate(queryset, opts)
        return result

    def insert(self, table: str, value: Mapping[str, Any]) -> str:
        raise _read_only("insert")

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        raise _read_only("patch")

    def replace(self, doc_id: str, value: Mapping[str, Any]) -> None:
        raise _read_only("replace")

    def delete(self, doc_id: str) -> None:
        raise _read_only("delete")


class MutationDb(QueryDb):
    """``ctx.db`` in a mutation: also ``insert``, ``patch``, ``replace`` and ``delete``."""

    def insert(self, table: str, value: Mapping[str, Any]) -> str:
        return store.insert(table, value)

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        store.patch(doc_id, fields)

    def replace(self, doc_id: str, value: Mapping[str, Any]) -> None:
        store.replace(doc_id, value)

    def delete(self, doc_id: str) -> None:
        store.delete(doc_id)


def _read_only(method: str) -> ReadOnlyError:
    return ReadOnlyError(f"ctx.db.{method}() writes; queries are read-only. Move the write "
                         "into a mutation.")
