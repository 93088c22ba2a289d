"""One table's CSV read as rows to import: the header row names the fields (``_id``, the
columns, ``_creationTime`` ignored), each cell is typed by the model field of its column, and a
bad cell is refused naming its row and column."""

from __future__ import annotations

import csv
import datetime
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models

from reactive.exceptions import BadRequest
from reactive.export.tables import Table

IGNORED = ("_creationTime", "_ts")  # derived by the database, as a JSONL import ignores them
Cell = Callable[[str], Any]
_INTEGER = (models.IntegerField, models.AutoField, models.BigAutoField, models.SmallAutoField)
_BOOLEANS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}


def csv_rows(table: Table, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, row by column) for each data row (the first data row is row 1).

    Raises BadRequest for a missing or bad header, a row with the wrong number of cells, a
    cell its field cannot hold, or text that is not CSV; each names the row and column.
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, [])
        if not header:
            raise _error(table, "the first line is empty; expected a header row of field names")
        parsers = _parsers(table, header)
        for number, cells in enumerate(reader, 1):
            if len(cells) != len(header):
                raise _error(table, f"row {number} (line {reader.line_num}) has {len(cells)} "
                             f"cells, the header has {len(header)}")
            yield number, _row(table, parsers, header, cells, number)
    except csv.Error as exc:
        raise _error(table, f"line {reader.line_num} is not valid CSV ({exc})") from None


def _parsers(table: Table, header: list[str]) -> list[tuple[str, Cell] | None]:
    """Per header cell: (column to write, parser), or None for an ignored system field."""
    fields = {str(f.column): f for f in table.model._meta.concrete_fields}
    seen: set[str] = set()
    out: list[tuple[str, Cell] | None] = []
    for name in header:
        if name in seen:
            raise _error(table, f"the header names {name!r} twice")
        seen.add(name)
        if name in IGNORED:
            out.append(None)
        elif name == "_id":
            out.append((table.pk, _parser(table.model._meta.pk)))
        elif name in fields and name != table.pk:
            out.append((name, _parser(fields[name])))
        else:
            known = ", ".join(["_id", *(c for c in fields if c != table.pk)])
            raise _error(table, f"the header names {name!r}, which is not a field of this "
                         f"table; its fields: {known}")
    if "_id" not in seen:
        raise _error(table, "the header has no '_id' column (the primary key of each row)")
    return out


def _row(table: Table, parsers: list[tuple[str, Cell] | None], header: list[str],
         cells: list[str], number: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, parser, cell in zip(header, parsers, cells, strict=True):
        if parser is None:
            continue
        column, parse = parser
        try:
            row[column] = parse(cell)
        except ValueError as exc:
            raise _error(table, f"row {number}, column {name!r}: {exc}") from None
    return row


def _parser(field: Any) -> Cell:
    """How a cell becomes the JSON value ``jsonb_populate_recordset`` reads for ``field``.
    An empty cell is null where the field allows it, else "" for text, else refused."""
    parse = _typed(field)
    text_like = parse is str

    def cell(text: str) -> Any:
        if text == "":
            if field.null:
                return None
            if text_like:
                return ""
            raise ValueError(f"empty, but {field.column!r} cannot be null")
        return parse(text)

    return cell


def _typed(field: Any) -> Cell:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.BooleanField):
        return _boolean
    if isinstance(target, _INTEGER):
        return _integer
    if isinstance(target, models.FloatField):
        return _float
    if isinstance(target, models.DecimalField):
        return _decimal
    if isinstance(target, (models.JSONField, ArrayField)):
        return _json
    if isinstance(target, models.DateTimeField):
        return _checked(datetime.datetime.fromisoformat, "an ISO 8601 date and time")
    if isinstance(target, models.DateField):
        return _checked(datetime.date.fromisoformat, "an ISO 8601 date")
    if isinstance(target, models.TimeField):
        return _checked(datetime.time.fromisoformat, "an ISO 8601 time")
    if isinstance(target, models.UUIDField):
        return _checked(uuid.UUID, "a UUID")
    return str  # text, and any type whose input function Postgres applies to the text


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, found {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, found {text!r}") from None


def _float(text: str) -> float | str:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, found {text!r}") from None
    # JSON has no NaN or infinity; float8's input function reads them as text.
    return value if value - value == 0 else text


def _decimal(text: str) -> str:
    try:
        return str(Decimal(text))  # exact, as text: numeric keeps every digit
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, found {text!r}") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"expected JSON ({exc})") from None


def _checked(parse: Callable[[str], Any], expected: str) -> Cell:
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError:
            raise ValueError(f"expected {expected}, found {text!r}") from None
        return text

    return check


def _error(table: Table, message: str) -> BadRequest:
    return BadRequest(f"Table {table.name!r}: {message}; nothing was imported into this table.",
                      code="BadImport")
