"""Read sets: what a query read, recorded from the SQL it executed, as per-table predicates.

Each statement's template (:mod:`reactive.capture.templates`: for every table it reads, the
conjunction of simple comparisons between one of its columns and a parameter or literal) is
bound to the statement's parameters here, giving predicates; ``recording`` collects them.
Whatever is not understood widens, never narrows: a dropped conjunct only makes the predicate
match more rows; an unparseable statement depends on every table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import reactive.capture.bypass as bypass
import reactive.capture.jsonpaths as jsonpaths
import reactive.capture.search as search
from reactive.capture.templates import CondTemplate, reads_nothing, template

logger = logging.getLogger(__name__)

OPS = frozenset({"eq", "in", "lt", "le", "gt", "ge", "isnull", "notnull", "jeq", "jcontains"})


@dataclass(frozen=True, slots=True)
class Condition:
    """``column <op> values``; ``values`` holds 1 value (2 for a BETWEEN's ge/le pair: two
    conditions are produced instead), any number for ``in``, none for the null tests.
    ``jeq``: ``(column -> path) = any of values[1:]`` on a jsonb column, ``values[0]`` the path
    (a tuple of keys), the others JSON texts (capture/jsonpaths.py); ``jcontains``
    alike for ``(column -> path) @> values[1]``."""

    column: str
    op: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class TablePredicate:
    """Rows of ``table`` satisfying all ``conditions`` (none: every row of the table)."""

    table: str
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchPredicate:
    """Rows of ``base`` (checked in Python first) for which Postgres finds ``sql`` true: a
    boolean expression over the changed row aliased ``reactive_row``, ``%s`` for ``params``.
    ``sql`` empty: ``base`` alone. ``nearest``: a top-k bound still to be read (see
    capture/search.py); until then ``sql`` holds only the filters, which is wider."""

    base: TablePredicate
    sql: str = ""
    params: tuple[Any, ...] = ()
    nearest: search.Nearest | None = None


@dataclass(frozen=True, slots=True)
class ReadSet:
    """Everything one query execution depends on. ``everything``: any change at all.
    ``functions``: names of functions the SQL called that sqlglot does not know (user functions
    among them); reactive.capture.resolve turns them, and views, into the tables they read."""

    predicates: frozenset[TablePredicate] = frozenset()
    everything: bool = False
    functions: frozenset[str] = frozenset()
    searches: frozenset[SearchPredicate] = frozenset()

    def tables(self) -> frozenset[str]:
        return frozenset(p.table for p in self.predicates) | frozenset(
            s.base.table for s in self.searches)


# -- binding and recording -----------------------------------------------------------------


def predicates_for(
    sql: str, params: Sequence[Any] | None, *, interpolated: bool | None = None
) -> ReadSet | None:
    """The read set of one executed statement (None if it reads nothing).

    ``params`` None: no values are known. ``interpolated``: whether the driver substituted
    placeholders (default: ``params is not None``, as for ``cursor.execute``). SQL that is not
    a ``str`` (psycopg ``sql.Composed``) depends on everything.
    """
    if not isinstance(sql, str):
        return ReadSet(everything=True)
    if reads_nothing(sql):
        return None  # checked before the cache: every savepoint has a new name
    tmpl = template(sql, params is not None if interpolated is None else interpolated)
    if tmpl is None:
        return None
    if tmpl.everything:
        return ReadSet(everything=True)
    bound: set[TablePredicate] = set()
    for table, conds in tmpl.tables:
        bound.add(TablePredicate(table, _bind(conds, params)))
    searches: set[SearchPredicate] = set()
    for (table, conds), scope in tmpl.searches:
        base = TablePredicate(table, _bind(conds, params))
        found = _bind_search(base, scope, params)
        if found is None:
            bound.add(base)  # the search parts could not be bound: the simple conditions only
        else:
            searches.add(found)
    return ReadSet(frozenset(bound), functions=frozenset(tmpl.functions),
                   searches=frozenset(searches))


def _bind_search(base: TablePredicate, scope: search.ScopeTemplate,
                 params: Sequence[Any] | None) -> SearchPredicate | None:
    checks = search.bind(" AND ".join(f"({c})" for c in scope.checks), params)
    nearest = None
    if scope.nearest is not None:
        distance_sql, statement_sql, limit, offset = scope.nearest
        distance = search.bind(distance_sql, params)
        statement = search.bind(statement_sql, params)
        page = search.bind_count(limit, params)
        if distance and statement and page and (offset is None or
                                                search.bind_count(offset, params) is not None):
            nearest = search.Nearest(distance[0], distance[1], statement[0], statement[1], page)
    sql, values = checks if checks is not None and scope.checks else ("", ())
    if not sql and nearest is None:
        return None
    return SearchPredicate(base, sql, values, nearest)


def _bind(conds: tuple[CondTemplate, ...], params: Sequence[Any] | None) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for cond in conds:
        values: list[Any] = []
        for kind, ref in cond.sources:
            if kind == "const":
                values.append(ref)
            elif params is not None and not isinstance(params, dict) and ref < len(params):
                values.append(params[ref])
            else:
                break  # unknown value: drop the condition (wider)
        else:
            if cond.op in ("jeq", "jcontains"):
                values = jsonpaths.bind(values)  # type: ignore[assignment]
                if values is None:
                    continue  # a path or value we cannot read: drop the condition (wider)
            if cond.op == "eq" and values == [None]:
                continue  # "= NULL" never matches in SQL; dropping it is merely wider
            try:
                hash(tuple(values))
            except TypeError:
                continue  # a list or dict (array, hstore...): not indexable, drop it (wider)
            out.append(Condition(cond.column, cond.op, tuple(values)))
    return tuple(sorted(out, key=lambda c: (c.op != "eq" and c.op != "in", c.column, c.op)))


class Recorder:
    """Collects the read set of the statements executed while it is installed."""

    def __init__(self) -> None:
        self.predicates: set[TablePredicate] = set()
        self.functions: set[str] = set()
        self.searches: set[SearchPredicate] = set()
        self.everything = False

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        try:
            # executemany: the driver substitutes each row's parameters; no one value is known.
            result = predicates_for(sql, None if many else params, interpolated=many or None)
            if result is not None and result.searches:
                with bypass.through_django():  # the bound statement is ours, not the query's
                    self.searches |= {search.resolve(context["connection"], s) if s.nearest
                                      else s for s in result.searches}
        except Exception:  # recording must never break the query it watches
            logger.exception("read set not recorded sql=%.200s", sql)
            result = ReadSet(everything=True)
        if result is not None:
            self.add(result)
        with bypass.through_django():
            return execute(sql, params, many, context)

    def raw(self, sql: Any, params: Any, many: bool) -> None:
        """A statement sent on the raw psycopg connection, around Django's cursor."""
        logger.info("statement on the raw connection recorded sql=%.200s", sql)
        try:
            result = (ReadSet(everything=True) if sql is None or isinstance(sql, bytes)
                      else predicates_for(sql, None if many else params,
                                          interpolated=many or params is not None))
        except Exception:
            logger.exception("read set not recorded sql=%.200s", sql)
            result = ReadSet(everything=True)
        if result is not None:
            self.add(result)

    def add(self, result: ReadSet) -> None:
        self.everything = self.everything or result.everything
        self.predicates |= result.predicates
        self.functions |= result.functions

    def read_set(self) -> ReadSet:
        return ReadSet(frozenset(self.predicates), self.everything, frozenset(self.functions),
                       frozenset(self.searches))


@contextlib.contextmanager
def recording(connection: Any) -> Iterator[Recorder]:
    """Record the read set of everything executed on ``connection`` inside the block."""
    recorder = Recorder()
    with connection.execute_wrapper(recorder), bypass.watching(connection, recorder.raw):
        yield recorder
