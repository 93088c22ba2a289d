"""Reactive, gapless pagination of querysets: ``ctx.paginate(queryset, pagination_opts)``.

Keyset pagination over the queryset's ordering (made total by appending the primary key).
A page's first run reads ``numItems`` rows and pins its end cursor in the query's journal;
every re-run reads exactly up to that pinned end, so pages grow and shrink but never leave gaps
or overlaps. The last page ends at ``END`` and so takes in rows appended later; a page grown
past twice its size recommends a split (``splitCursor``), as Convex's clients expect.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired

from django.db.models import Model, Q, QuerySet
from typing_extensions import TypedDict

from reactive.exceptions import ExecutionError, FunctionError

END = "_end_"
MAX_ITEMS = 10_000


class PaginationOptions(TypedDict):
    """What clients send as ``paginationOpts`` (``usePaginatedQuery``, ``loadMore``)."""

    numItems: int
    cursor: str | None
    endCursor: NotRequired[str | None]
    id: NotRequired[int]
    maximumRowsRead: NotRequired[int]
    maximumBytesRead: NotRequired[int]


@dataclass(frozen=True)
class _Key:
    fields: tuple[str, ...]
    descending: tuple[bool, ...]


def paginate(queryset: QuerySet[Any], opts: Mapping[str, Any], pinned_end: str | None
             ) -> tuple[dict[str, Any], str]:
    """One page of ``queryset``; returns the result object and the end cursor to pin."""
    num_items = int(opts.get("numItems", 0))
    if not 0 <= num_items <= MAX_ITEMS:
        raise ExecutionError(f"paginationOpts.numItems must be between 0 and {MAX_ITEMS}.")
    key = _ordering(queryset)
    model = queryset.model
    start = opts.get("cursor")
    rows = queryset
    if start:
        rows = rows.filter(_after(key, _decode(model, key, start)))
    end = opts.get("endCursor") or pinned_end
    if end is not None:
        if end != END:
            rows = rows.filter(~_after(key, _decode(model, key, end)))
        page = list(rows)
        result = {"page": page, "isDone": end == END, "continueCursor": end}
        if num_items and len(page) > 2 * num_items:
            result["splitCursor"] = _encode(key, page[len(page) // 2 - 1])
            result["pageStatus"] = "SplitRecommended"
        return result, end
    items = list(rows[: num_items + 1])
    if len(items) > num_items:
        page = items[:num_items]
        cursor = _encode(key, page[-1]) if page else (start or "")
        if not page:  # numItems == 0: an empty page that is not done
            return {"page": [], "isDone": False, "continueCursor": start or ""}, start or ""
        return {"page": page, "isDone": False, "continueCursor": cursor}, cursor
    return {"page": items, "isDone": True, "continueCursor": END}, END


def _ordering(queryset: QuerySet[Any]) -> _Key:
    meta = queryset.model._meta
    ordering = list(queryset.query.order_by) or list(meta.ordering or [])
    fields: list[str] = []
    descending: list[bool] = []
    for item in ordering:
        if not isinstance(item, str) or "__" in item or item.startswith("?"):
            raise ExecutionError(
                f"ctx.paginate needs a queryset ordered by fields of {meta.label}, not {item!r}."
            )
        name = item.lstrip("-")
        field = meta.pk if name == "pk" else meta.get_field(name)
        fields.append(field.attname)
        descending.append(item.startswith("-"))
    if meta.pk.attname not in fields:
        fields.append(meta.pk.attname)
        descending.append(descending[0] if descending else False)
    ordered = [f"-{f}" if d else f for f, d in zip(fields, descending, strict=True)]
    queryset.query.clear_ordering(force=True)
    queryset.query.add_ordering(*ordered)
    return _Key(tuple(fields), tuple(descending))


def _after(key: _Key, values: list[Any]) -> Q:
    """Rows strictly after ``values`` in the ordering."""
    condition = Q(pk__in=[])
    for i, (field, desc) in enumerate(zip(key.fields, key.descending, strict=True)):
        prefix = {key.fields[j]: values[j] for j in range(i)}
        step = {f"{field}__{'lt' if desc else 'gt'}": values[i]}
        condition |= Q(**prefix, **step)
    return condition


def _encode(key: _Key, obj: Model) -> str:
    raw = [_plain(getattr(obj, field)) for field in key.fields]
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()


def _plain(value: Any) -> Any:
    if value is None:
        raise ExecutionError("ctx.paginate cannot order by a column holding NULL.")
    return value if isinstance(value, int | float | str | bool) else str(value)


def _decode(model: type[Model], key: _Key, cursor: str) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(raw, list) or len(raw) != len(key.fields):
            raise ValueError("wrong length")
        fields = {f.attname: f for f in model._meta.concrete_fields}
        return [fields[name].to_python(value) for name, value in zip(key.fields, raw, strict=True)]
    except Exception:
        raise FunctionError(
            {"isConvexSystemError": True, "paginationError": "InvalidCursor"},
            message=f"InvalidCursor: {cursor[:40]!r} is not a cursor of this query.",
        ) from None
