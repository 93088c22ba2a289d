"""The read-set index: which subscribed queries a changed row can affect, in O(matches).

Per table, predicates with an equality (``=``/``IN``) are hashed on their first equality
column's value; the rest (ranges only) sit in a per-table list; whole-table reads in a
catch-all set. A changed row (old or new image) is looked up in each, then the candidate's
full predicate is checked. Values are compared after the model field's ``to_python`` so that
JSON from the change log and ORM parameters agree, and only where the column's real type (from
the catalog) compares like the Python value: not citext, non-deterministic collations, float4,
char(n), json. Aware datetimes compare as UTC instants. Anything that cannot be compared counts
as a match (never narrow); so does a JSON null, which the log cannot tell from SQL NULL.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections

import reactive.capture.catalog as catalog
import reactive.capture.jsonpaths as jsonpaths
from reactive.capture.readsets import Condition, ReadSet, TablePredicate

logger = logging.getLogger(__name__)

Key = Hashable

_UNKNOWN = object()  # a value we could not normalise: compares as "maybe"
# Ordering is only trusted for these types; text order depends on the collation.
_ORDERED = (int, float, decimal.Decimal, datetime.datetime, datetime.date, datetime.time,
            datetime.timedelta)


@dataclass(frozen=True, slots=True)
class Change:
    """One row change from the change log. ``op``: I, U, D or T (truncate: no rows)."""

    table: str
    op: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None


class Matcher:
    """Maps subscription keys to their read sets and finds the keys a change invalidates."""

    def __init__(self, column_types: Mapping[tuple[str, str], catalog.ColumnType] | None = None
                 ) -> None:
        """``column_types``: the catalog's column types; loaded from the default database on
        first use when not given."""
        self._read_sets: dict[Key, ReadSet] = {}
        self._everything: builtins.set[Key] = set()
        self._table_refs: dict[str, int] = {}  # table -> how many read sets involve it
        self._catch_all: dict[str, builtins.set[Key]] = defaultdict(set)
        self._ranges: dict[str, dict[Key, list[TablePredicate]]] = defaultdict(dict)
        # table -> column -> normalised value -> key -> predicates hashed there
        self._eq: dict[str, dict[str, dict[Any, dict[Key, list[TablePredicate]]]]] = (
            defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
        )
        self._columns = _Columns(column_types)
        from reactive.capture.searchmatch import SearchIndex  # it imports this module's peers

        self._search = SearchIndex(self._satisfies)

    def __len__(self) -> int:
        return len(self._read_sets)

    def __contains__(self, key: Key) -> bool:
        return key in self._read_sets

    def set(self, key: Key, read_set: ReadSet) -> None:
        """Index ``key`` under ``read_set``, replacing what it had."""
        self.remove(key)
        self._read_sets[key] = read_set
        if read_set.everything:
            self._everything.add(key)
        for table in read_set.tables():
            self._table_refs[table] = self._table_refs.get(table, 0) + 1
        for predicate in read_set.predicates:
            self._index(key, predicate)
        if read_set.searches:
            self._search.set(key, read_set.searches)

    def remove(self, key: Key) -> None:
        read_set = self._read_sets.pop(key, None)
        if read_set is None:
            return
        self._everything.discard(key)
        for table in read_set.tables():
            if self._table_refs[table] == 1:
                del self._table_refs[table]
            else:
                self._table_refs[table] -= 1
        if read_set.searches:
            self._search.remove(key)
        for predicate in read_set.predicates:
            table = predicate.table
            self._catch_all[table].discard(key)
            self._ranges[table].pop(key, None)
            eq = _first_equality(predicate)
            if eq is not None:
                by_value = self._eq[table][eq.column]
                for value in eq.values:
                    normal = self._columns.normalise(table, eq.column, value, param=True)
                    bucket = by_value.get(normal)
                    if bucket is not None:
                        bucket.pop(key, None)
                        if not bucket:
                            del by_value[normal]

    def tables(self) -> frozenset[str] | None:
        """The tables some indexed read set involves; ``None`` when one involves everything
        (then a change to any table may match)."""
        return None if self._everything else frozenset(self._table_refs)

    def involves(self, tables: Iterable[str]) -> bool:
        """Whether a change to any of ``tables`` could match some indexed read set."""
        return bool(self._everything) or any(t in self._table_refs for t in tables)

    def match(self, changes: Iterable[Change], cursor: Any = None) -> builtins.set[Key]:
        """Every key whose read set an old or new row of ``changes`` satisfies.

        ``cursor``: a cursor in the snapshot that includes ``changes``, on which search
        predicates are evaluated (capture/searchmatch.py); without it they count as matched.
        """
        changes = list(changes)
        hit: builtins.set[Key] = set(self._everything)
        for change in changes:
            hit |= self._catch_all.get(change.table, builtins.set())
            if change.op == "T":
                hit |= self._keys_of_table(change.table)
                continue
            for row in (change.old, change.new):
                if row is not None:
                    self._match_row(change.table, row, hit)
        return hit | self._search.match(changes, cursor, hit)

    def _match_row(self, table: str, row: Mapping[str, Any], hit: builtins.set[Key]) -> None:
        for column, by_value in self._eq.get(table, {}).items():
            value = (self._columns.normalise(table, column, row[column]) if column in row
                     else _UNKNOWN)
            for key, predicates in by_value.get(value, {}).items():
                if key not in hit and any(self._satisfies(p, row) for p in predicates):
                    hit.add(key)
            if value is _UNKNOWN:  # cannot hash-compare: check every predicate of the column
                for bucket in by_value.values():
                    hit.update(k for k, ps in bucket.items() if k not in hit and any(
                        self._satisfies(p, row) for p in ps))
        for key, predicates in self._ranges.get(table, {}).items():
            if key not in hit and any(self._satisfies(p, row) for p in predicates):
                hit.add(key)

    def _keys_of_table(self, table: str) -> builtins.set[Key]:
        return {k for k, rs in self._read_sets.items() if table in rs.tables()}

    def _index(self, key: Key, predicate: TablePredicate) -> None:
        table = predicate.table
        if not predicate.conditions:
            self._catch_all[table].add(key)
            return
        eq = _first_equality(predicate)
        if eq is None:
            self._ranges[table].setdefault(key, []).append(predicate)
            return
        normals = [self._columns.normalise(table, eq.column, value, param=True)
                   for value in eq.values]
        if any(normal is _UNKNOWN for normal in normals):
            self._ranges[table].setdefault(key, []).append(predicate)  # checked one by one
            return
        by_value = self._eq[table][eq.column]
        for normal in normals:
            by_value[normal].setdefault(key, []).append(predicate)

    def _satisfies(self, predicate: TablePredicate, row: Mapping[str, Any]) -> bool:
        return all(self._holds(predicate.table, c, row) for c in predicate.conditions)

    def _holds(self, table: str, cond: Condition, row: Mapping[str, Any]) -> bool:
        if cond.column not in row:
            return True  # a column we cannot see: maybe
        raw = row[cond.column]
        if cond.op in ("jeq", "jcontains"):
            return jsonpaths.holds(raw, cond.values, cond.op)
        if raw is None and self._columns.null_is_ambiguous(table, cond.column):
            return True  # JSON null and SQL NULL are both null in the logged image
        if cond.op == "isnull":
            return raw is None
        if cond.op == "notnull":
            return raw is not None
        if raw is None:
            return False  # NULL compares as unknown in SQL: the row is not selected
        value = self._columns.normalise(table, cond.column, raw)
        wanted = [self._columns.normalise(table, cond.column, v, param=True) for v in cond.values]
        if value is _UNKNOWN or any(w is _UNKNOWN for w in wanted):
            return True
        if cond.op in ("eq", "in"):
            return value in wanted
        if not isinstance(value, _ORDERED) or not all(isinstance(w, _ORDERED) for w in wanted):
            return True  # e.g. text ranges: the collation decides, not Python
        try:
            return _compare(cond.op, value, wanted[0])
        except TypeError:
            return True


def _compare(op: str, value: Any, bound: Any) -> bool:
    if op == "lt":
        return bool(value < bound)
    if op == "le":
        return bool(value <= bound)
    if op == "gt":
        return bool(value > bound)
    return bool(value >= bound)


def _first_equality(predicate: TablePredicate) -> Condition | None:
    for cond in predicate.conditions:
        if cond.op in ("eq", "in"):
            return cond
    return None


# The kind of Python value each field's database type compares like. Fields not listed (JSON,
# binary, arrays, ranges, network addresses, custom types) are never compared in Python.
_FIELD_KINDS = {
    **dict.fromkeys(("AutoField", "BigAutoField", "SmallAutoField", "IntegerField",
                     "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField", "FloatField",
                     "DecimalField"), "number"),
    **dict.fromkeys(("CharField", "TextField", "SlugField", "FileField", "FilePathField"),
                    "text"),
    "BooleanField": "bool", "DateTimeField": "datetime", "DateField": "date",
    "TimeField": "time", "DurationField": "duration", "UUIDField": "uuid",
}


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | decimal.Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime.datetime):
        return "aware" if value.utcoffset() is not None else "naive"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    if isinstance(value, datetime.timedelta):
        return "duration"
    if isinstance(value, uuid.UUID):
        return "uuid"
    return None


# The Postgres types whose values compare like the Python values of each kind. Others (float4
# promoted to float8, char(n) padding, citext, money, timestamp for an aware kind...) never
# compare in Python.
_TYPES_OF_KIND = {
    "number": {"int2", "int4", "int8", "float8", "numeric"},
    "text": {"text", "varchar"}, "bool": {"bool"}, "aware": {"timestamptz"},
    "naive": {"timestamp"}, "date": {"date"}, "time": {"time"}, "duration": {"interval"},
    "uuid": {"uuid"},
}
_JSON_TYPES = {"json", "jsonb"}


class _Columns:
    """Normalises values per (table, column) through the owning model field, cached.

    A value is only trusted when it has the kind of Python value the column's type compares
    like (a timestamptz column: aware datetimes) and the catalog's type for the column is one
    that compares that way; a parameter also must survive ``to_python`` unchanged, unless it is
    a string, which Postgres converts as an untyped literal. Anything else, NaN and infinities
    included, is ``_UNKNOWN``, which compares as "maybe".
    """

    def __init__(self, types: Mapping[tuple[str, str], catalog.ColumnType] | None) -> None:
        self._fields: dict[str, dict[str, tuple[Any, str]]] | None = None
        self._types = types

    def normalise(self, table: str, column: str, value: Any, *, param: bool = False) -> Any:
        if value is None:
            return _UNKNOWN if self.null_is_ambiguous(table, column) else None
        field, kind = self._field(table, column)
        if kind == "datetime":
            kind = "aware" if settings.USE_TZ else "naive"
        if field is None or (param and not isinstance(value, str) and _kind(value) != kind):
            return _UNKNOWN
        try:
            normal = field.to_python(value)
        except Exception:
            return _UNKNOWN
        if _kind(normal) != kind or not _finite(normal):
            return _UNKNOWN
        if param and not isinstance(value, str) and normal != value:
            return _UNKNOWN  # e.g. 1.5 for an integer column: Postgres compares 1 < 1.5
        if kind == "aware":
            # One instant, one value: Python's == between zones is False for a local time
            # that a DST fall-back makes ambiguous, even when both name the same instant.
            return normal.astimezone(datetime.UTC)
        return normal

    def null_is_ambiguous(self, table: str, column: str) -> bool:
        """A null in a logged image may be JSON null: json columns, and columns of unknown type."""
        ctype = self._catalog().get((table, column))
        if ctype is not None:
            return ctype.type in _JSON_TYPES
        field = self._model_fields().get(table, {}).get(column)
        return field is None or field[1] == "json"

    def _field(self, table: str, column: str) -> tuple[Any, str]:
        field, kind = self._model_fields().get(table, {}).get(column, (None, ""))
        if field is None:
            return None, ""
        ctype = self._catalog().get((table, column))
        if ctype is not None:
            wanted = "aware" if kind == "datetime" and settings.USE_TZ else (
                "naive" if kind == "datetime" else kind)
            if ctype.type not in _TYPES_OF_KIND.get(wanted, ()) or not ctype.deterministic:
                return None, ""
        return field, kind

    def _model_fields(self) -> dict[str, dict[str, tuple[Any, str]]]:
        if self._fields is None:
            self._fields = {}
            for model in apps.get_models(include_auto_created=True):
                columns = self._fields.setdefault(model._meta.db_table, {})
                for field in model._meta.concrete_fields:
                    if field.column:
                        columns[field.column] = _comparable(field)
        return self._fields

    def _catalog(self) -> Mapping[tuple[str, str], catalog.ColumnType]:
        if self._types is None:
            try:
                with connections["default"].cursor() as cursor:
                    self._types = catalog.column_types(cursor)
            except Exception as exc:  # no database here: model fields alone decide
                logger.warning("column types not loaded; comparing by model fields error=%s",
                               exc)
                self._types = {}
        return self._types


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, decimal.Decimal):
        return value.is_finite()  # Postgres orders NaN above every number; Python raises
    return True


def _comparable(field: Any) -> tuple[Any, str]:
    """The field whose ``to_python`` gives the column's values, and their kind ("": none,
    "json": a JSON column)."""
    while field.is_relation and getattr(field, "target_field", None) is not None:
        field = field.target_field
    internal = field.get_internal_type()
    if internal == "JSONField":
        return None, "json"
    kind = _FIELD_KINDS.get(internal, "")
    if kind == "text" and getattr(field, "db_collation", None):
        kind = ""  # a non-deterministic collation makes unequal strings equal
    return (field, kind) if kind else (None, "")
