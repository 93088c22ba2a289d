"""Matching changed rows against search predicates: Python checks the simple conditions, then
Postgres evaluates the search SQL of every remaining (predicate, row) pair in ONE statement,
at the caller's snapshot. Whatever cannot be evaluated counts as a match (never narrow).
"""

from __future__ import annotations

import builtins
import decimal
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from reactive.capture.readsets import SearchPredicate, TablePredicate
from reactive.sql import quote_ident

logger = logging.getLogger(__name__)

Key = Hashable
Row = Mapping[str, Any]
_PLACEHOLDER = re.compile(r"%%|%s")


class SearchIndex:
    """Search predicates by table; ``match`` finds the keys a batch of changes can affect."""

    def __init__(self, satisfies: Callable[[TablePredicate, Row], bool]) -> None:
        self._satisfies = satisfies
        self._by_table: dict[str, dict[Key, frozenset[SearchPredicate]]] = defaultdict(dict)

    def set(self, key: Key, searches: frozenset[SearchPredicate]) -> None:
        self.remove(key)
        by_table: dict[str, set[SearchPredicate]] = defaultdict(set)
        for predicate in searches:
            by_table[predicate.base.table].add(predicate)
            _warn_without_index(predicate)
        for table, predicates in by_table.items():
            self._by_table[table][key] = frozenset(predicates)

    def remove(self, key: Key) -> None:
        for table in [t for t, keys in self._by_table.items() if keys.pop(key, None)]:
            if not self._by_table[table]:
                del self._by_table[table]

    def match(self, changes: Iterable[Any], cursor: Any | None,
              already: builtins.set[Key]) -> builtins.set[Key]:
        """Keys not in ``already`` whose search predicates an old or new row satisfies.
        ``cursor`` None: the search SQL is not evaluated and counts as satisfied."""
        hit: builtins.set[Key] = set()
        pending: list[tuple[Key, SearchPredicate, Row]] = []
        for change in changes:
            keys = self._by_table.get(change.table)
            if not keys or change.op == "T":
                continue  # a TRUNCATE is matched by table in the Matcher
            for row in (change.old, change.new):
                if row is None:
                    continue
                for key, predicates in keys.items():
                    if key in already or key in hit:
                        continue
                    for predicate in predicates:
                        if not self._satisfies(predicate.base, row):
                            continue
                        if not predicate.sql or cursor is None:
                            hit.add(key)
                            break
                        pending.append((key, predicate, row))
        pending = [p for p in pending if p[0] not in hit]
        if pending:
            hit |= _evaluate(cursor, pending)
        return hit


def _evaluate(cursor: Any, pending: list[tuple[Key, SearchPredicate, Row]]
              ) -> builtins.set[Key]:
    """The keys of ``pending`` whose SQL holds for their row, in one statement."""
    rows: dict[int, int] = {}  # id(row) -> position in the rows array (1-based)
    row_list: list[Row] = []
    groups: dict[tuple[str, str], list[tuple[int, int, tuple[Any, ...]]]] = defaultdict(list)
    for index, (_, predicate, row) in enumerate(pending):
        if id(row) not in rows:
            row_list.append(row)
            rows[id(row)] = len(row_list)
        groups[(predicate.base.table, predicate.sql)].append(
            (index, rows[id(row)], predicate.params))
    params: list[Any] = [json.dumps(row_list, default=_json)]
    branches = []
    for (table, sql), members in groups.items():
        width = len(members[0][2])
        if any(len(m[2]) != width for m in members):
            return {key for key, _, _ in pending}  # not one template: cannot happen; be safe
        columns = ", ".join(["i", "j", *(f"p{n}" for n in range(1, width + 1))])
        values = ", ".join("(" + ", ".join(["%s::int", "%s::int"] + ["%s"] * width) + ")"
                           for _ in members)
        for index, row_position, values_params in members:
            params += [index, row_position, *values_params]
        branches.append(
            f"SELECT v.i FROM (VALUES {values}) AS v({columns}) "
            "JOIN reactive_rows ON reactive_rows.j = v.j "
            f"CROSS JOIN LATERAL jsonb_populate_record(NULL::{quote_ident(table)}, "
            "reactive_rows.r) "
            f'AS "reactive_row" WHERE {_on_values(sql)}'
        )
    statement = ("WITH reactive_rows(j, r) AS (SELECT ordinality::int, value FROM "
                 "jsonb_array_elements(%s::jsonb) WITH ORDINALITY) "
                 + " UNION ALL ".join(branches))
    try:
        cursor.execute("SAVEPOINT reactive_search")
        cursor.execute(statement, params)
        matched = {int(row[0]) for row in cursor.fetchall()}
        cursor.execute("RELEASE SAVEPOINT reactive_search")
    except Exception:
        logger.warning("search predicates not evaluated; re-running pairs=%d", len(pending),
                       exc_info=True)
        cursor.execute("ROLLBACK TO SAVEPOINT reactive_search")
        return {key for key, _, _ in pending}
    return {pending[i][0] for i in matched}


_warned: builtins.set[tuple[str, str]] = set()
_DISTANCE = re.compile(r"<=>|<->|<#>|<\+>")


def _warn_without_index(predicate: SearchPredicate) -> None:
    """reactive.W072/W073, logged once per table: a live search (nearest-neighbour query)
    over a model whose Meta.indexes declare no GIN (HNSW/IVFFlat) index. Correct, but slow."""
    if not predicate.sql:
        return  # a nearest-neighbour page that is not full: no search to judge
    kind = "vector" if _DISTANCE.search(predicate.sql) else "text"
    if (predicate.base.table, kind) in _warned:
        return
    _warned.add((predicate.base.table, kind))
    from django.apps import apps

    wanted = {"GinIndex"} if kind == "text" else {"HnswIndex", "IvfflatIndex"}
    for model in apps.get_models():
        if model._meta.db_table == predicate.base.table:
            if not any(type(index).__name__ in wanted for index in model._meta.indexes):
                logger.warning(
                    "%s live %s without an index table=%s; declare %s in %s's Meta.indexes "
                    "(docs/guides/search.md)", "reactive.W072" if kind == "text" else
                    "reactive.W073", "search" if kind == "text" else "nearest-neighbour query",
                    predicate.base.table, " or ".join(sorted(wanted)), model._meta.label)
            return


def _on_values(sql: str) -> str:
    """``sql`` with its n-th ``%s`` reading column ``v.pn`` of the VALUES list."""
    counter = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda m: "%%" if m.group(0) == "%%" else f"v.p{next(counter)}",
                            sql)


def _json(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)  # jsonb_populate_record reads a numeric column from text too
    raise TypeError(f"not JSON: {type(value).__name__}")


