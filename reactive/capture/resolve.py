"""Turning a recorded read set into the tables whose changes can alter the result: views are
expanded to the relations they read (recursively, from the catalog), SQL-language function
bodies are read for their tables, other user functions widen to everything; and the relations
read that no capture trigger watches are named."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import reactive.capture.catalog as catalog
from reactive.capture.readsets import ReadSet, TablePredicate
from reactive.capture.templates import template

logger = logging.getLogger(__name__)

MAX_FUNCTION_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Resolution:
    """``read_set``: over base tables only. ``untracked``: relations read that carry no capture
    triggers (untracked tables, materialized views, foreign tables, unknown names): a write
    to them reaches no live query."""

    read_set: ReadSet
    untracked: frozenset[str] = frozenset()


def resolve(read_set: ReadSet, cursor: Any) -> Resolution:
    """Resolve ``read_set`` with catalog queries on ``cursor`` (any open cursor)."""
    tables: set[str] = set()
    everything = read_set.everything
    if read_set.functions:
        found, wide = _function_tables(cursor, set(read_set.functions), 0)
        tables |= found
        everything = everything or wide
    kinds = catalog.relkinds_cached(cursor, read_set.tables() | tables)
    views = {name for name, kind in kinds.items() if kind == "v"}
    predicates = {p for p in read_set.predicates if p.table not in views}
    # A search over a view widens like any predicate on it: to the relations it reads.
    searches = frozenset(s for s in read_set.searches if s.base.table not in views)
    if views:
        relations, functions = catalog.view_reads(cursor, views)
        kinds.update(relations)
        tables |= relations.keys()
        if functions:
            found, wide = _function_tables(cursor, functions, 0)
            tables |= found
            found_kinds = catalog.relkinds_cached(cursor, found - kinds.keys())
            kinds.update(found_kinds)
            # a view read by a function a view calls: not expanded again, so widen
            everything = everything or wide or "v" in found_kinds.values()
    # A table reached through a view or a function: its rows are read in ways we did not see.
    predicates |= {TablePredicate(table) for table in tables if kinds.get(table) != "v"}
    read = {p.table for p in predicates} | {s.base.table for s in searches}
    captured = catalog.captured_tables(cursor, read)
    untracked = frozenset(t for t in read if t not in captured)
    return Resolution(ReadSet(frozenset(predicates), everything, searches=searches), untracked)


def _function_tables(cursor: Any, names: set[str], depth: int) -> tuple[set[str], bool]:
    """Tables the user functions among ``names`` read, and whether one cannot be followed."""
    names -= catalog.system_function_names(cursor)
    if not names:
        return set(), False
    if depth >= MAX_FUNCTION_DEPTH:
        logger.info("function calls nest too deep; widening functions=%s", sorted(names))
        return set(), True
    found = catalog.functions(cursor, names)
    tables: set[str] = set()
    nested: set[str] = set()
    for name in sorted(names):
        overloads = found.get(name)
        if not overloads:  # another schema, or a name sqlglot misread: cannot follow it
            logger.info("unknown function called; widening function=%s", name)
            return set(), True
        for info in overloads:
            if info.system:
                continue
            if info.language != "sql" or not info.source.strip():  # plpgsql, C, BEGIN ATOMIC
                logger.info("function body not followed; widening function=%s language=%s",
                            name, info.language)
                return set(), True
            body = template(info.source, False)
            if body is None:
                continue  # control statements only
            if body.everything:
                logger.info("function body not parsed; widening function=%s", name)
                return set(), True
            tables.update(table for table, _ in body.tables)
            nested.update(body.functions)
    if nested - names:
        more, wide = _function_tables(cursor, nested - names, depth + 1)
        return tables | more, wide
    return tables, False

