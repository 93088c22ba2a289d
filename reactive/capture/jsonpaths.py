"""Read-set conditions on jsonb document fields: ``(col -> key) = v``, ``(col #> path) = v`` and
their ``IN`` lists, as Django's JSONField key lookups write them (``data__pinned=True``).

Parsed here from sqlglot trees, bound to parameters (psycopg ``Jsonb`` wrappers), and checked
against a logged row image with jsonb's equality. Whatever is unsure counts as a match: a path
through an array, an integer key, a float in the image, a null ``col``.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

Source = tuple[str, Any]
_EXTRACTS = (exp.JSONExtract, exp.JSONBExtract)


def condition(node: exp.Expression, sources: Mapping[str, exp.Table]
              ) -> tuple[str, str, tuple[str, Source, list[Source]]] | None:
    """``(alias, op, (column, path source, value sources))`` for a jsonb key equality or IN
    list (op ``jeq``) or containment ``(col -> key) @> v`` (op ``jcontains``)."""
    while isinstance(node, exp.Paren):
        node = node.this
    op = "jeq"
    if isinstance(node, exp.ArrayContainsAll):
        left, operands, op = node.this, [node.expression], "jcontains"
    elif isinstance(node, exp.EQ):
        left, operands = node.this, [node.expression]
        if not isinstance(_unparen(left), _EXTRACTS):
            left, operands = node.expression, [node.this]
    elif isinstance(node, exp.In) and not node.args.get("query"):
        left, operands = node.this, list(node.expressions)
    else:
        return None
    extract = _unparen(left)
    if not isinstance(extract, _EXTRACTS) or not operands:
        return None
    column = extract.this
    if not isinstance(column, exp.Column):
        return None
    alias = column.table or (next(iter(sources)) if len(sources) == 1 else "")
    path = _path(extract.expression)
    values = [_value(operand) for operand in operands]
    if alias not in sources or path is None or any(v is None for v in values):
        return None
    return alias, op, (column.name, path, values)  # type: ignore[return-value]


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _path(node: exp.Expression) -> Source | None:
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
        return ("param", int(node.this.this) - 1)
    if isinstance(node, exp.JSONPath):
        keys = [part.this for part in node.expressions if not isinstance(part, exp.JSONPathRoot)]
        if len(keys) == 1 and isinstance(keys[0], str):
            return ("const", (keys[0],))
        return None
    if isinstance(node, exp.Literal) and node.is_string:
        return ("const", (node.this,))
    return None


def _value(node: exp.Expression) -> Source | None:
    if isinstance(node, exp.Cast):  # '...'::jsonb
        node = node.this
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
        return ("param", int(node.this.this) - 1)
    if isinstance(node, exp.Literal) and node.is_string:
        return ("const", _Text(node.this))
    return None


class _Text(str):
    """A JSON text written as a literal in the SQL (not a Python value to serialise)."""


def bind(values: Sequence[Any]) -> tuple[Any, ...] | None:
    """``(path tuple, JSON text, ...)`` from a bound path and values; None if unsure."""
    raw_path, *raw_values = values
    if isinstance(raw_path, str):
        path: tuple[str, ...] = (raw_path,)
    elif isinstance(raw_path, list | tuple) and all(isinstance(k, str) for k in raw_path):
        path = tuple(raw_path)
    else:
        return None  # an integer key (array index) or something unknown
    texts = []
    for value in raw_values:
        if isinstance(value, str):  # JSON text, typed jsonb by Postgres (literal or parameter)
            text = value
        elif hasattr(value, "obj") and hasattr(value, "dumps"):  # psycopg Jsonb / Json
            try:
                text = (value.dumps or json.dumps)(value.obj)
                text = text.decode() if isinstance(text, bytes) else text
            except Exception:
                return None
        else:
            return None
        try:
            json.loads(text, parse_float=decimal.Decimal)
        except (ValueError, TypeError):
            return None
        texts.append(text)  # the text Postgres parses; compared parsed, as exact decimals
    return (path, *texts)


def holds(image: Any, values: Sequence[Any], op: str = "jeq") -> bool:
    """Whether the logged jsonb ``image`` of the column may satisfy the bound condition."""
    if image is None:
        return True  # a null column, or one we cannot see: maybe
    path, *texts = values
    current = image
    for key in path:
        if isinstance(current, list):
            return True  # a text key into an array: Postgres may read it as an index
        if not isinstance(current, dict):
            return False  # a key into a scalar: NULL, never equal
        if key not in current:
            return False  # no such key: NULL, never equal
        current = current[key]
    for text in texts:
        wanted = json.loads(text, parse_float=decimal.Decimal)
        verdict = _equal(current, wanted) if op == "jeq" else _contains(current, wanted, True)
        if verdict is not False:
            return True
    return False


def _equal(a: Any, b: Any) -> bool | None:
    """jsonb equality; None when Python cannot decide (a float in the image)."""
    if isinstance(a, float) or isinstance(b, float):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | decimal.Decimal) and isinstance(b, int | decimal.Decimal):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        verdicts = [_equal(a[k], b[k]) for k in a]
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        verdicts = [_equal(x, y) for x, y in zip(a, b, strict=True)]
    else:
        return type(a) is type(b) and bool(a == b)
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _contains(a: Any, b: Any, top: bool) -> bool | None:
    """jsonb ``a @> b``; None when unsure. At the top an array contains a scalar it holds."""
    if isinstance(b, dict):
        if not isinstance(a, dict):
            return False if isinstance(a, list) or not top else None
        verdicts = [_nested(a[k], v) if k in a else False for k, v in b.items()]
    elif isinstance(b, list):
        if not isinstance(a, list):
            return None if not isinstance(a, dict) else False
        verdicts = [_any([_member(x, e) for x in a]) for e in b]
    elif isinstance(a, list):
        return _any([_equal(x, b) for x in a if not isinstance(x, list | dict)]) if top else None
    elif isinstance(a, dict):
        return False
    else:
        return _equal(a, b)
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _nested(a: Any, b: Any) -> bool | None:
    """An object's value: containers of one kind recurse; scalars compare; mixed: unsure."""
    if isinstance(b, dict | list) and type(a) is type(b):
        return _contains(a, b, False)
    if not isinstance(a, dict | list) and not isinstance(b, dict | list):
        return _equal(a, b)
    return None


def _member(x: Any, e: Any) -> bool | None:
    """Whether array element ``x`` accounts for element ``e`` of the contained array."""
    if isinstance(e, dict | list):
        return _contains(x, e, False) if type(x) is type(e) else False
    return False if isinstance(x, dict | list) else _equal(x, e)


def _any(verdicts: list[bool | None]) -> bool | None:
    if True in verdicts:
        return True
    return None if None in verdicts else False
