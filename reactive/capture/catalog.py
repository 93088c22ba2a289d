"""What the Postgres catalog knows and the SQL text does not: column types (how values compare),
relation kinds, what a view reads, what a user function's body reads, and which tables carry
the capture triggers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Relations a statement-level trigger with transition tables can sit on.
TRIGGER_KINDS = frozenset({"r", "p"})
MAX_VIEW_DEPTH = 32


@dataclass(frozen=True, slots=True)
class ColumnType:
    """A column's type name (domains resolved to their base) and whether its collation is
    deterministic (a non-deterministic one makes different strings equal)."""

    type: str
    deterministic: bool = True


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """One overload of a function visible by name: its language, its body text (``prosrc``)
    and whether it belongs to the system or an extension (assumed to read no user table)."""

    language: str
    source: str
    system: bool


def relkinds(cursor: Any, names: Iterable[str]) -> dict[str, str]:
    """``pg_class.relkind`` of each existing relation among ``names`` (by search_path)."""
    cursor.execute(
        "SELECT n, c.relkind FROM unnest(%s::text[]) AS n "
        "JOIN pg_class c ON c.oid = to_regclass(quote_ident(n))", [sorted(set(names))])
    return {name: str(kind) for name, kind in cursor.fetchall()}


_TABLES: set[str] = set()  # names seen as ordinary tables: assumed to stay tables


def relkinds_cached(cursor: Any, names: Iterable[str]) -> dict[str, str]:
    """``relkinds`` without a query for names already seen as tables (the common case: a read
    set over tables costs no catalog query). Views and unknown names are looked up each time,
    so a view created or redefined later is seen."""
    wanted = set(names)
    known = {name: "r" for name in wanted & _TABLES}
    rest = wanted - known.keys()
    if rest:
        found = relkinds(cursor, rest)
        _TABLES.update(name for name, kind in found.items() if kind in TRIGGER_KINDS)
        known.update(found)
    return known


def column_types(cursor: Any) -> dict[tuple[str, str], ColumnType]:
    """The type of every column of every relation visible on the search_path."""
    cursor.execute(
        "SELECT c.relname, a.attname, coalesce(bt.typname, t.typname), "
        "coalesce(col.collisdeterministic, true) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype "
        "LEFT JOIN pg_collation col ON col.oid = a.attcollation "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 "
        "AND NOT a.attisdropped AND pg_table_is_visible(c.oid)"
    )
    return {(table, column): ColumnType(str(kind), bool(deterministic))
            for table, column, kind, deterministic in cursor.fetchall()}


def view_reads(cursor: Any, views: Iterable[str]) -> tuple[dict[str, str], set[str]]:
    """The relations (name -> relkind) and user functions that ``views`` read, through nested
    views, from the rewrite rules' dependencies (``pg_rewrite`` / ``pg_depend``)."""
    relations: dict[str, str] = {}
    functions: set[str] = set()
    pending, seen = set(views), set(views)
    for _ in range(MAX_VIEW_DEPTH):
        if not pending:
            return relations, functions
        cursor.execute(
            "SELECT DISTINCT rc.relname, rc.relkind, p.proname FROM pg_rewrite r "
            "JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid "
            "LEFT JOIN pg_class rc ON d.refclassid = 'pg_class'::regclass "
            "AND rc.oid = d.refobjid LEFT JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass "
            "AND p.oid = d.refobjid WHERE r.ev_class = ANY(ARRAY(SELECT to_regclass("
            "quote_ident(n)) FROM unnest(%s::text[]) AS n)) AND d.refobjid <> r.ev_class "
            "AND (rc.oid IS NOT NULL OR p.oid IS NOT NULL)", [sorted(pending)])
        pending = set()
        for relname, relkind, proname in cursor.fetchall():
            if proname is not None:
                functions.add(str(proname))
            elif relkind == "v":
                if relname not in seen:
                    seen.add(relname)
                    pending.add(str(relname))
            else:
                relations[str(relname)] = str(relkind)
    raise RecursionError(f"views nest deeper than {MAX_VIEW_DEPTH}: {sorted(views)}")


def functions(cursor: Any, names: Iterable[str]) -> dict[str, list[FunctionInfo]]:
    """Every overload visible on the search_path of each function name."""
    cursor.execute(
        "SELECT p.proname, l.lanname, coalesce(p.prosrc, ''), n.nspname = 'pg_catalog' OR "
        "EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass "
        "AND e.objid = p.oid AND e.deptype = 'e') "
        "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = ANY(%s::text[]) AND n.nspname = ANY(current_schemas(true))",
        [sorted(set(names))])
    found: dict[str, list[FunctionInfo]] = {}
    for name, language, source, system in cursor.fetchall():
        found.setdefault(str(name), []).append(FunctionInfo(str(language), str(source),
                                                            bool(system)))
    return found


class _Cache:
    """A value loaded from the catalog, reloaded on demand at most every ``min_age`` s."""

    def __init__(self, min_age: float) -> None:
        self.min_age = min_age
        self.value: Any = None
        self.loaded = 0.0
        self.lock = threading.Lock()

    def stale(self) -> bool:
        return self.value is None or time.monotonic() - self.loaded >= self.min_age

    def store(self, value: Any) -> Any:
        with self.lock:
            self.value, self.loaded = value, time.monotonic()
        return value


_SYSTEM_NAMES = _Cache(min_age=float("inf"))
_CAPTURED = _Cache(min_age=5.0)


def system_function_names(cursor: Any) -> frozenset[str]:
    """Names of the functions in ``pg_catalog`` (loaded once per process)."""
    if _SYSTEM_NAMES.value is None:
        cursor.execute("SELECT DISTINCT proname FROM pg_proc "
                       "WHERE pronamespace = 'pg_catalog'::regnamespace")
        _SYSTEM_NAMES.store(frozenset(str(name) for (name,) in cursor.fetchall()))
    return frozenset(_SYSTEM_NAMES.value)


def captured_tables(cursor: Any, wanted: Iterable[str] = ()) -> frozenset[str]:
    """Tables carrying all four capture triggers, enabled ALWAYS. Cached; reloaded when a
    ``wanted`` table is missing and the copy is older than a few seconds."""
    value = _CAPTURED.value
    if value is None or (not set(wanted) <= value and _CAPTURED.stale()):
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname IN ('reactive_ins', 'reactive_upd', 'reactive_del', "
            "'reactive_trunc') AND t.tgenabled = 'A' AND pg_table_is_visible(c.oid) "
            "GROUP BY c.relname HAVING count(*) = 4")
        value = _CAPTURED.store(frozenset(str(name) for (name,) in cursor.fetchall()))
    return frozenset(value)


def forget() -> None:
    """Drop the cached trigger list (after installing or removing triggers)."""
    _CAPTURED.store(None)
