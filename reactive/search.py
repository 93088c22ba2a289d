"""Search conveniences for query functions: search-as-you-type ranked full-text search and
nearest-neighbour pages, built from Django's and pgvector's own expressions.

Both stay live with precise invalidation (docs/guides/search.md): a write re-runs a search
only when its old or new row matches the query, a nearest-neighbour page only when the row is
in it or closer than its last hit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, TypeVar, cast

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db.models import F, Model, QuerySet

M = TypeVar("M", bound=Model)
Distance = Literal["cosine", "l2", "inner_product", "l1"]

_WORD = re.compile(r"\w+", re.UNICODE)


def prefix_query(text: str, *, config: str | None = "english") -> SearchQuery | None:
    """A tsquery matching every word of ``text``, the last one as a prefix (``'hel':*``).

    Words are quoted for ``to_tsquery``, so punctuation and operators in ``text`` are plain
    text, never tsquery syntax. None when ``text`` has no word.
    """
    words = _WORD.findall(text)
    if not words:
        return None
    terms = ["'" + word.replace("'", "''") + "'" for word in words]
    terms[-1] += ":*"
    return SearchQuery(" & ".join(terms), search_type="raw", config=config)


def search(queryset: QuerySet[M], fields: str | Sequence[str], text: str, *,
           config: str | None = "english", prefix: bool = True) -> QuerySet[M]:
    """Rows of ``queryset`` whose ``fields`` match ``text``, most relevant first.

    Annotates ``search_rank`` (``ts_rank``) and orders by it, then by primary key descending; the
    last word is a prefix unless ``prefix=False`` (then ``text`` is read like a web search
    box: quotes, ``or``, ``-word``). An empty ``text`` gives no rows. For speed, declare a
    ``GinIndex(SearchVector(*fields, config=config))`` in the model's ``Meta.indexes``.
    """
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    if not names:
        raise ValueError("search() needs at least one field to search.")
    query = (prefix_query(text, config=config) if prefix
             else SearchQuery(text, search_type="websearch", config=config))
    if query is None or not text.strip():
        return queryset.none()
    vector = SearchVector(*names, config=config)
    rows = (queryset.annotate(_reactive_document=vector, search_rank=SearchRank(vector, query))
            .filter(_reactive_document=query).order_by("-search_rank", "-pk"))
    return cast("QuerySet[M]", rows)


def nearest(queryset: QuerySet[M], field: str, vector: Sequence[float], *, k: int = 10,
            distance: Distance = "cosine") -> QuerySet[M]:
    """The ``k`` rows of ``queryset`` nearest to ``vector`` by ``distance`` on the pgvector
    ``field``, annotated ``distance``, nearest first (ties by primary key).

    Live: a write re-runs it only if the written row is on the page, or now at least as
    close as its last hit, or the page has fewer than ``k`` rows. Declare an ``HnswIndex``
    with the matching operator class for speed (reactive.W071).
    """
    from pgvector import django as pgvector_django

    if k < 1:
        raise ValueError(f"nearest() needs k >= 1; got {k}.")
    expression = {
        "cosine": pgvector_django.CosineDistance, "l2": pgvector_django.L2Distance,
        "inner_product": pgvector_django.MaxInnerProduct, "l1": pgvector_django.L1Distance,
    }.get(distance)
    if expression is None:
        raise ValueError(f"Unknown distance {distance!r}; use cosine, l2, inner_product or l1.")
    rows = (queryset.annotate(distance=expression(field, list(vector)))
            .order_by(F("distance").asc(), "pk")[:k])
    return cast("QuerySet[M]", rows)
