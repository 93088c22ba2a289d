"""Search read sets: full-text conjuncts and nearest-neighbour top-k, found in a parsed SELECT.

A conjunct made only of known, deterministic parts (columns of one table, parameters,
literals, casts, COALESCE, ``||``, the text-search functions, ``@@``, comparisons) is kept as
SQL, to be evaluated by Postgres against changed rows (capture/searchmatch.py). An
``ORDER BY <vector distance> LIMIT k`` over one table becomes a distance bound: the k-th
hit's distance, read in the query's own snapshot. Anything else returns None: the caller
keeps its wider predicate.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any

from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from sqlglot import exp

from reactive.sql import quote_ident

logger = logging.getLogger(__name__)

ROW = "reactive_row"  # the alias of the changed row when Postgres evaluates a check

_FULL_TEXT = frozenset({
    "to_tsvector", "setweight", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
    "to_tsquery", "ts_rank", "ts_rank_cd", "strip", "array_to_tsvector",
})
# pgvector's operators, parsed as the functions that implement them (same values).
_OPERATORS = {"<=>": "cosine_distance", "<->": "l2_distance", "<+>": "l1_distance",
              "<#>": "inner_product"}
_DISTANCES = {name: op for op, name in _OPERATORS.items()}
_FUNCTIONS = _FULL_TEXT | set(_DISTANCES)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_SAFE = (exp.Column, exp.Identifier, exp.Parameter, exp.Literal, exp.Paren, exp.Coalesce,
         exp.DPipe, exp.MatchAgainst, exp.ArrayOverlaps, exp.Cast, exp.DataType,
         exp.DataTypeParam, exp.ObjectIdentifier, exp.Neg, exp.Null, exp.Boolean, exp.And,
         exp.Or, exp.Is, exp.In, exp.Not, *_COMPARISONS)
_OPERATOR = re.compile(
    r'\(\s*((?:"[^"]+"\.)?"[^"]+")\s*(<=>|<->|<\+>|<#>)\s*(\$\d+(?:::\w+(?:\(\d+\))?)?)\s*\)'
)
_SNAPSHOT_LEVELS = (IsolationLevel.REPEATABLE_READ, IsolationLevel.SERIALIZABLE)
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_PLACEHOLDER = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Nearest:
    """A top-k scope before its bound is known: the statement reading the k-th distance."""

    distance: str  # SQL over ROW with %s: the changed row's distance to the query vector
    distance_params: tuple[Any, ...]
    statement: str  # returns the distances of the page, in order
    statement_params: tuple[Any, ...]
    limit: int


@dataclass(frozen=True, slots=True)
class ScopeTemplate:
    """What one table of one SELECT adds beyond simple comparisons ($n placeholders)."""

    checks: tuple[str, ...]
    nearest: tuple[str, str, int | str, int | str | None] | None = None  # dist, stmt, lim, off


def rewrite_operators(text: str) -> str:
    """``(col <=> $1)`` as ``(cosine_distance(col, $1))``, outside quoted text: sqlglot reads
    ``<=>`` as MySQL's null-safe equality and cannot read ``<#>``."""
    parts, last = [], 0
    for quoted in _QUOTED.finditer(text):
        parts.append(_OPERATOR.sub(_as_function, text[last:quoted.start()]))
        parts.append(quoted.group(0))
        last = quoted.end()
    parts.append(_OPERATOR.sub(_as_function, text[last:]))
    return "".join(parts)


def _as_function(match: re.Match[str]) -> str:
    column, op, param = match.groups()
    call = f"{_OPERATORS[op]}({column}, {param})"
    return f"(-{call})" if op == "<#>" else f"({call})"


def analyze_scope(select: exp.Select, alias: str, table: str,
                  leftovers: list[exp.Expression], single: bool) -> ScopeTemplate | None:
    """The search parts of ``alias`` in ``select``: the full-text conjuncts among
    ``leftovers`` (conjuncts the simple analysis dropped), and a top-k bound when ``single``
    (the only source of the SELECT, not outer-joined). None when there are none."""
    try:
        checks = tuple(
            _regenerate(c, alias) for c in leftovers
            if _is_full_text(c) and _belongs(c, alias, single)
        )
        nearest = _nearest(select, alias, table) if single else None
    except Exception:  # an unexpected shape: the simple analysis stands alone (wider)
        logger.debug("search analysis failed", exc_info=True)
        return None
    if not checks and nearest is None:
        return None
    return ScopeTemplate(checks, nearest)


def _is_full_text(node: exp.Expression) -> bool:
    return all(_safe(n) for n in node.walk()) and any(
        isinstance(n, exp.MatchAgainst) or _function(n) in _FULL_TEXT for n in node.walk())


def _safe(node: Any) -> bool:
    if _function(node):
        return _function(node) in _FUNCTIONS
    return isinstance(node, _SAFE) and not isinstance(node, exp.Query)


def _function(node: Any) -> str:
    """A function call's name, lower case ("" for anything else); sqlglot has classes of its
    own for some (CosineDistance), the rest are Anonymous."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func) and not isinstance(node, _SAFE):
        return str(node.sql_name()).lower()
    return ""


def _arguments(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    return [a for a in (node.this, node.args.get("expression")) if a is not None]


def _belongs(node: exp.Expression, alias: str, single: bool) -> bool:
    columns = list(node.find_all(exp.Column))
    return bool(columns) and all(c.table == alias or (single and not c.table) for c in columns)


def _regenerate(node: exp.Expression, alias: str) -> str:
    """``node`` as Postgres SQL with its columns on ROW (placeholders stay ``$n``)."""

    def move(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column):
            return exp.column(exp.to_identifier(n.name, quoted=True),
                              table=exp.to_identifier(ROW, quoted=True))
        return n

    return node.copy().transform(move).sql(dialect="postgres")


def _nearest(select: exp.Select, alias: str, table: str
             ) -> tuple[str, str, int | str, int | str | None] | None:
    if any(select.args.get(k) for k in ("distinct", "group", "having", "qualify", "joins")):
        return None
    if any(e.find(exp.AggFunc, exp.Window, exp.Query) for e in select.expressions):
        return None
    order = select.args.get("order")
    limit, offset = _count(select.args.get("limit")), _count(select.args.get("offset"))
    if order is None or limit is None or (select.args.get("offset") and offset is None):
        return None
    first = order.expressions[0]
    if first.args.get("desc") or first.args.get("nulls_first"):
        return None
    term = _resolve(first.this, select)
    distance = _distance(term, alias) if term is not None else None
    where = select.args.get("where")
    if distance is None or (where is not None and not all(_safe(n) for n in where.walk())):
        return None
    column, op, param = distance
    text = f"SELECT ({alias_column(alias, column)} {op} {param}) FROM "
    text += (select.args.get("from_") or select.args["from"]).this.sql(dialect="postgres")
    if where is not None:
        text += " WHERE " + where.this.sql(dialect="postgres")
    rest = [o.sql(dialect="postgres") for o in order.expressions[1:]]
    text += " ORDER BY " + ", ".join(["1 ASC", *rest]) + f" LIMIT {limit}"
    text += f" OFFSET {offset}" if offset is not None else ""
    # The query vector typed as the column (a bare text value would not be): what Postgres
    # infers for ``col <=> $n`` in the query itself.
    key = column.replace("'", "''")
    typed = (f"(jsonb_populate_record(NULL::{quote_ident(table)}, jsonb_build_object("
             f"'{key}', ({param})::text))).{quote_ident(column)}")
    row_distance = f"({quote_ident(ROW)}.{quote_ident(column)} {op} {typed})"
    return row_distance, text, limit, offset


def alias_column(alias: str, column: str) -> str:
    return f"{quote_ident(alias)}.{quote_ident(column)}"




def _count(node: exp.Expression | None) -> int | str | None:
    """A LIMIT/OFFSET count: an int, a ``$n`` placeholder, or None (absent or unknown)."""
    value = node.args.get("expression") if node is not None else None
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return int(value.this)
    if isinstance(value, exp.Parameter):
        return value.sql(dialect="postgres")
    return None


def _resolve(term: exp.Expression, select: exp.Select) -> exp.Expression | None:
    """An ORDER BY term as an expression: ``ORDER BY 7`` and output aliases name columns."""
    projections = select.expressions
    found: Any = term
    if isinstance(term, exp.Literal) and not term.is_string and term.this.isdigit():
        index = int(term.this) - 1
        found = projections[index] if 0 <= index < len(projections) else None
    elif isinstance(term, exp.Column) and not term.table:
        aliased = [p for p in projections if isinstance(p, exp.Alias) and p.alias == term.name]
        found = aliased[0] if aliased else term
    result: exp.Expression | None = found.this if isinstance(found, exp.Alias) else found
    return result


def _distance(term: exp.Expression, alias: str) -> tuple[str, str, str] | None:
    """(column name, operator, parameter sql) for ``dist(alias.col, $n)``."""
    while isinstance(term, exp.Paren):
        term = term.this
    negated = isinstance(term, exp.Neg)
    if negated:
        term = term.this
        while isinstance(term, exp.Paren):
            term = term.this
    name = _function(term)
    if name not in _DISTANCES or (name == "inner_product") != negated:
        return None
    args = _arguments(term)
    if len(args) != 2 or not isinstance(args[0], exp.Column) or args[0].table not in (alias, ""):
        return None
    param = args[1]
    if isinstance(param, exp.Cast):
        param = param.this
    if not isinstance(param, exp.Parameter):
        return None
    return args[0].name, _DISTANCES[name], param.sql(dialect="postgres")


# -- binding ------------------------------------------------------------------------------


def bind(text: str, params: Any) -> tuple[str, tuple[Any, ...]] | None:
    """``$n`` placeholders as ``%s`` with their values in order (literal ``%`` doubled); None
    when a value is unknown or unhashable."""
    if params is None or isinstance(params, dict):
        return None
    values: list[Any] = []
    out, last = [], 0
    segments = [(m.start(), m.end()) for m in _QUOTED.finditer(text)] + [(len(text), len(text))]
    for start, end in segments:
        out.append(_PLACEHOLDER.sub(lambda m: _take(m, params, values), text[last:start]
                                    .replace("%", "%%")))
        out.append(text[start:end].replace("%", "%%"))
        last = end
    if any(v is _MISSING for v in values):
        return None
    try:
        hash(tuple(values))
    except TypeError:
        return None
    return "".join(out), tuple(values)


_MISSING = object()


def _take(match: re.Match[str], params: Any, values: list[Any]) -> str:
    index = int(match.group(1)) - 1
    values.append(params[index] if 0 <= index < len(params) else _MISSING)
    return "%s"


def bind_count(count: int | str | None, params: Any) -> int | None:
    if count is None or isinstance(count, int):
        return count
    bound = bind(count, params)
    if bound is None or not isinstance(bound[1][0], int) or isinstance(bound[1][0], bool):
        return None
    return int(bound[1][0])


def resolve(connection: Any, predicate: Any) -> Any:
    """Give a top-k ``predicate`` its bound: the distance of the last hit on its page, read
    in the current transaction's snapshot (REPEATABLE READ or SERIALIZABLE only: the query
    itself must see the same snapshot). Without a bound the predicate keeps only its checks,
    so any matching change re-runs the query (a page shorter than k, or no snapshot)."""
    nearest: Nearest = predicate.nearest
    plain = dataclasses.replace(predicate, nearest=None)
    raw = getattr(connection, "connection", None)
    level = getattr(raw, "isolation_level", None)
    # In a transaction, whoever sent its BEGIN: the Reactor's rounds and queries send their
    # own with psycopg in autocommit (functions.snapshots.run_snapshot).
    if (raw is None or raw.info.transaction_status != TransactionStatus.INTRANS
            or level not in _SNAPSHOT_LEVELS):
        return plain
    try:
        with raw.transaction(), raw.cursor() as cursor:  # a savepoint: an error hurts nobody
            cursor.execute(nearest.statement, nearest.statement_params)
            distances = [row[0] for row in cursor.fetchall()]
    except Exception:
        logger.warning("nearest bound not read; widening sql=%.200s", nearest.statement,
                       exc_info=True)
        return plain
    if len(distances) < nearest.limit or distances[-1] is None:
        return plain
    bound = f"({nearest.distance}) <= %s"
    sql = f"({predicate.sql}) AND {bound}" if predicate.sql else bound
    params = predicate.params + nearest.distance_params + (float(distances[-1]),)
    return dataclasses.replace(plain, sql=sql, params=params)
