"""SQL templates: each statement text parsed once (sqlglot) into what it reads.

For every ``SELECT`` scope, the tables it reads and the conjuncts that compare one column with
a parameter or literal, plus the functions it calls and its search scopes. Binding a template's
parameters into predicates is :mod:`reactive.capture.readsets`' job. Whatever is not understood
widens: a dropped conjunct, a table read whole, or ``everything`` for SQL that does not parse.
"""

from __future__ import annotations

import decimal
import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

import reactive.capture.jsonpaths as jsonpaths
import reactive.capture.search as search

logger = logging.getLogger(__name__)

# A value source: ("param", index) or ("const", value).
Source = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class CondTemplate:
    column: str
    op: str
    sources: tuple[Source, ...]


_Scope = tuple[str, tuple[CondTemplate, ...]]


@dataclass(frozen=True, slots=True)
class Template:
    tables: tuple[_Scope, ...]
    everything: bool = False
    functions: tuple[str, ...] = ()
    searches: tuple[tuple[_Scope, search.ScopeTemplate], ...] = ()


_EVERYTHING = Template((), everything=True)
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


def reads_nothing(sql: str) -> bool:
    """One control statement (SAVEPOINT, RELEASE, SET...): no table is read."""
    return bool(_SKIP.match(sql)) and ";" not in sql.strip().rstrip(";")


@functools.lru_cache(maxsize=4096)
def template(sql: str, interpolated: bool = True) -> Template | None:
    """Parse ``sql`` into a template; None for statements that read nothing (SAVEPOINT...).

    ``interpolated``: the driver substitutes parameters (Django passes a parameter sequence,
    even an empty one); without parameters the text reaches Postgres as it is, ``%%`` included.
    """
    if reads_nothing(sql):
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
    return Template(tuple(tables), functions=tuple(sorted(functions)),
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
        by_alias: dict[str, list[CondTemplate]] = {alias: [] for alias in sources}
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
) -> tuple[str, list[CondTemplate]] | None:
    while isinstance(node, exp.Paren):
        node = node.this
    found = jsonpaths.condition(node, sources)
    if found is not None:
        alias, op, (column, path, values) = found
        return alias, [CondTemplate(column, op, (path, *values))]
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
) -> tuple[str, list[CondTemplate]] | None:
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
) -> tuple[str, list[CondTemplate]] | None:
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
    return alias, [CondTemplate(column.name, op, tuple(values))]


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
