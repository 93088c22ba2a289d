"""Read sets: what a query read, recorded from the SQL it executed, as per-table predicates.

Each statement is parsed once per SQL text (sqlglot) into a template: for every table it reads,
the conjunction of simple comparisons (=, IN, <, <=, >, >=, BETWEEN, IS [NOT] NULL) between one
of its columns and a parameter or literal. Binding the statement's parameters gives predicates.
Whatever is not understood widens, never narrows: a dropped conjunct only makes the predicate
match more rows; an unparseable statement depends on every table.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

import reactive.capture.bypass as bypass
import reactive.capture.jsonpaths as jsonpaths
import reactive.capture.search as search

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


# -- templates: parsed once per SQL text ---------------------------------------------------

# A value source: ("param", index) or ("const", value).
Source = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class _CondTemplate:
    column: str
    op: str
    sources: tuple[Source, ...]


_Scope = tuple[str, tuple[_CondTemplate, ...]]


@dataclass(frozen=True, slots=True)
class _Template:
    tables: tuple[_Scope, ...]
    everything: bool = False
    functions: tuple[str, ...] = ()
    searches: tuple[tuple[_Scope, search.ScopeTemplate], ...] = ()


_EVERYTHING = _Template((), everything=True)
_QUOTED = re.compile(r"'(?:[^']|'')*'" r'|"(?:[^"]|"")*"')
_PERCENT = re.compile(r"%%|%s")
_SKIP = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|SET|SHOW|BEGIN|COMMIT)\b", re.IGNORECASE)
# Statements that read no table (a multi-statement text may mix them with queries).
_CONTROL = (exp.Transaction, exp.Commit, exp.Rollback, exp.Set)


def _numbered(sql: str) -> tuple[str, bool]:
    """What psycopg sends for ``sql`` with parameters, with ``$1..$n`` for the placeholders.

    psycopg does not parse SQL: every ``%s`` is a placeholder and every ``%%`` a ``%``, inside
    quotes too. So positions are counted the same way here. The flag says a placeholder sat
    inside quoted text, where the parsed literal would not be the value sent.
    """
    counter = iter(range(1, 1_000_000))
    in_quotes = any("%s" in token.replace("%%", "") for token in _QUOTED.findall(sql))

    def replace(match: re.Match[str]) -> str:
        return "%" if match.group(0) == "%%" else f"${next(counter)}"

    return _PERCENT.sub(replace, sql), in_quotes


def _reads_nothing(sql: str) -> bool:
    """One control statement (SAVEPOINT, RELEASE, SET...): no table is read."""
    return bool(_SKIP.match(sql)) and ";" not in sql.strip().rstrip(";")


@functools.lru_cache(maxsize=4096)
def template(sql: str, interpolated: bool = True) -> _Template | None:
    """Parse ``sql`` into a template; None for statements that read nothing (SAVEPOINT...).

    ``interpolated``: the driver substitutes parameters (Django passes a parameter sequence,
    even an empty one); without parameters the text reaches Postgres as it is, ``%%`` included.
    """
    if _reads_nothing(sql):
        return None
    text, quoted_placeholder = _numbered(sql) if interpolated else (sql, False)
    if quoted_placeholder:
        return _EVERYTHING
    tables: list[_Scope] = []
    functions: set[str] = set()
    searches: list[tuple[_Scope, search.ScopeTemplate]] | None = None
    if interpolated and "!!" not in text:  # sqlglot reads tsquery's "!!" as a double NOT
        text, searches = search.rewrite_operators(text), []
    try:
        for statement in sqlglot.parse(text, read="postgres"):
            if statement is None or isinstance(statement, _CONTROL):
                continue
            if not isinstance(statement, exp.Query):
                return _EVERYTHING
            # Postgres folds unquoted names to lower case; the change log has the real names.
            tree: exp.Expression = normalize_identifiers(statement, dialect="postgres")  # type: ignore[assignment]
            tables += _analyze(tree, searches)
            functions.update(_function_names(tree))
    except Exception:  # any parse or analysis failure widens to "everything"
        logger.debug("read set unparsed sql=%.200s", sql)
        return _EVERYTHING
    return _Template(tuple(tables), functions=tuple(sorted(functions)),
                     searches=tuple(searches or ()))


def _function_names(tree: exp.Expression) -> set[str]:
    """Calls sqlglot has no class for: user functions, and builtins it does not model. An
    unquoted name is folded to lower case, as Postgres does."""
    names = set()
    for call in tree.find_all(exp.Anonymous):
        name = call.this
        if isinstance(name, exp.Identifier):
            names.add(name.this if name.quoted else name.this.lower())
        elif isinstance(name, str):
            names.add(name.lower())
    return names


def _analyze(tree: exp.Expression,
             searches: list[tuple[_Scope, search.ScopeTemplate]] | None) -> list[_Scope]:
    """The per-table conditions of every SELECT in ``tree``; a table whose conditions include
    search parts goes to ``searches`` instead (None: do not look for them)."""
    out: list[_Scope] = []
    covered: set[int] = set()
    for select in tree.find_all(exp.Select):
        sources, nullable = _sources(select)
        conjuncts = _conjuncts(select.args.get("where"))
        for join in select.args.get("joins") or []:
            if not _is_outer(join):
                conjuncts += _conjuncts(join.args.get("on"))
        by_alias: dict[str, list[_CondTemplate]] = {alias: [] for alias in sources}
        leftovers: list[exp.Expression] = []
        for conjunct in conjuncts:
            parsed = _condition(conjunct, sources)
            if parsed is not None:
                alias, cond = parsed
                by_alias[alias].extend(cond)
            else:
                leftovers.append(conjunct)
        single = len(sources) == 1 and not select.args.get("joins")
        for alias, table in sources.items():
            covered.add(id(table))
            conds = () if alias in nullable else tuple(by_alias[alias])
            scope = (None if searches is None or alias in nullable else
                     search.analyze_scope(select, alias, table.name, leftovers, single))
            if scope is None:
                out.append((table.name, conds))
            else:
                searches.append(((table.name, conds), scope))  # type: ignore[union-attr]
    for table in tree.find_all(exp.Table):  # tables outside any SELECT scope we understood
        if id(table) not in covered and table.name:
            out.append((table.name, ()))
    # A name a WITH clause defines is not a table (the CTE's own body is analysed above).
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return [(name, conds) for name, conds in out if name not in ctes]


def _sources(select: exp.Select) -> tuple[dict[str, exp.Table], set[str]]:
    sources: dict[str, exp.Table] = {}
    nullable: set[str] = set()
    from_ = select.args.get("from_") or select.args.get("from")
    items: list[tuple[exp.Expression, exp.Join | None]] = []
    if from_ is not None:
        items.append((from_.this, None))
    for join in select.args.get("joins") or []:
        items.append((join.this, join))
    for node, join in items:
        if not isinstance(node, exp.Table) or not node.name:
            continue
        alias = node.alias_or_name
        sources[alias] = node
        side = (join.args.get("side") or "").upper() if join is not None else ""
        if side in {"LEFT", "FULL"} and join is not None:
            nullable.add(alias)
        if side in {"RIGHT", "FULL"}:
            nullable.update(a for a in sources if a != alias)  # everything before it
    return sources, nullable


def _is_outer(join: exp.Join) -> bool:
    return (join.args.get("side") or "").upper() in {"LEFT", "RIGHT", "FULL"}


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.Where):
        node = node.this
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


_COMPARISONS: dict[type[exp.Expression], tuple[str, str]] = {
    exp.EQ: ("eq", "eq"),
    exp.LT: ("lt", "gt"),
    exp.LTE: ("le", "ge"),
    exp.GT: ("gt", "lt"),
    exp.GTE: ("ge", "le"),
}


def _condition(
    node: exp.Expression, sources: dict[str, exp.Table]
) -> tuple[str, list[_CondTemplate]] | None:
    while isinstance(node, exp.Paren):
        node = node.this
    found = jsonpaths.condition(node, sources)
    if found is not None:
        alias, op, (column, path, values) = found
        return alias, [_CondTemplate(column, op, (path, *values))]
    if type(node) in _COMPARISONS:
        op, flipped = _COMPARISONS[type(node)]
        left, right = node.this, node.expression
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right, op = right, left, flipped
        return _simple(left, op, [right], sources)
    if isinstance(node, exp.In) and not node.args.get("query"):
        return _simple(node.this, "in", list(node.expressions), sources)
    if isinstance(node, exp.Between) and not node.args.get("symmetric"):  # SYMMETRIC may swap
        low = _simple(node.this, "ge", [node.args["low"]], sources)
        high = _simple(node.this, "le", [node.args["high"]], sources)
        if low and high:
            return low[0], low[1] + high[1]
        return None
    return _null_or_boolean_test(node, sources, negated=False)


def _null_or_boolean_test(
    node: exp.Expression, sources: dict[str, exp.Table], *, negated: bool
) -> tuple[str, list[_CondTemplate]] | None:
    """``x IS [NOT] NULL`` (sqlglot marks ``IS NOT`` with ``negate``, older versions wrap it in
    Not), any number of NOTs around it, and a bare boolean column ``x`` / ``NOT x``."""
    while isinstance(node, exp.Paren | exp.Not):
        if isinstance(node, exp.Not):
            negated = not negated
        node = node.this
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        is_null = bool(node.args.get("negate")) == negated
        return _simple(node.this, "isnull" if is_null else "notnull", [], sources)
    if isinstance(node, exp.Column):  # a WHERE/ON operand on its own is boolean in Postgres
        return _simple(node, "eq", [exp.Boolean(this=not negated)], sources)
    return None


def _simple(
    column: exp.Expression, op: str, operands: list[exp.Expression], sources: dict[str, exp.Table]
) -> tuple[str, list[_CondTemplate]] | None:
    if not isinstance(column, exp.Column):
        return None
    alias = column.table or (next(iter(sources)) if len(sources) == 1 else "")
    if alias not in sources:
        return None  # a correlated reference to an outer query, or ambiguous
    values: list[Source] = []
    for operand in operands:
        source = _source(operand)
        if source is None:
            return None
        values.append(source)
    if op == "in" and not values:
        return None
    return alias, [_CondTemplate(column.name, op, tuple(values))]


def _source(node: exp.Expression) -> Source | None:
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
        return ("param", int(node.this.this) - 1)
    if isinstance(node, exp.Literal):
        return ("const", node.this if node.is_string else _number(node.this))
    if isinstance(node, exp.Boolean):
        return ("const", bool(node.this))
    return None


def _number(text: str) -> Any:
    # Postgres types a literal with a point or exponent as numeric, not float8.
    try:
        return int(text)
    except ValueError:
        return decimal.Decimal(text)


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
    if _reads_nothing(sql):
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


def _bind(conds: tuple[_CondTemplate, ...], params: Sequence[Any] | None) -> tuple[Condition, ...]:
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
