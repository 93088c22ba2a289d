"""What may be stored: table names, document ids, and documents (JSON only, size and depth
limits from ``DOCUMENTS_MAX_BYTES`` / ``DOCUMENTS_MAX_DEPTH``). Every check runs before a write."""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from typing import Any

from reactive.clock import Clock
from reactive.conf import reactive_settings
from reactive.exceptions import DocumentError

TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
ID = re.compile(rf"^[{ID_ALPHABET}]{{32}}$")
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
SYSTEM_FIELDS = ("_id", "_creationTime")
EXACT = 2**53  # JSON numbers are float64 to every client: integers are exact up to here

_clock = Clock()


def check_table(name: object) -> str:
    """``name`` if it is a valid table name (a letter, then letters, digits, ``_``; <= 64)."""
    if not isinstance(name, str) or not TABLE_NAME.match(name):
        raise DocumentError(
            f"Invalid table name {str(name)[:80]!r}: use a letter followed by up to 63 letters, "
            "digits or underscores.", code="InvalidTableName")
    return name


def check_id(value: object, table: str | None = None) -> str:
    if not isinstance(value, str) or not ID.match(value):
        raise DocumentError(f"Invalid document id {str(value)[:80]!r}: expected an id returned "
                            "by ctx.db.insert.", code="InvalidDocumentId", table=table)
    return value


def new_id() -> str:
    raw = secrets.randbits(160)
    return "".join(ID_ALPHABET[(raw >> (5 * i)) & 31] for i in range(32))


def creation_time() -> float:
    """Milliseconds since the epoch, strictly increasing within this process."""
    return _clock.next() / 1_000_000


def check_document(table: str, value: object) -> dict[str, Any]:
    """A validated copy of ``value`` (its system fields removed); DocumentError otherwise."""
    if not isinstance(value, Mapping):
        raise DocumentError(f"A document of {table!r} must be an object (a dict), not "
                            f"{type(value).__name__}.", code="InvalidDocument", table=table)
    conf = reactive_settings()
    body = {k: v for k, v in value.items() if k not in SYSTEM_FIELDS}
    for key in body:
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            raise DocumentError(
                f"Invalid field name {str(key)[:80]!r} in a document of {table!r}: top-level "
                "fields start with a letter (names starting with '_' are reserved).",
                code="InvalidDocument", table=table, field=str(key)[:80])
    copy = _plain(body, table, "", 1, conf.DOCUMENTS_MAX_DEPTH)
    size = len(json.dumps(copy, separators=(",", ":"), ensure_ascii=False).encode())
    if size > conf.DOCUMENTS_MAX_BYTES:
        raise DocumentError(f"A document of {table!r} is {size} bytes as JSON; the limit is "
                            f"DOCUMENTS_MAX_BYTES={conf.DOCUMENTS_MAX_BYTES}.",
                            code="DocumentTooLarge", table=table)
    assert isinstance(copy, dict)
    return copy


def _plain(value: object, table: str, path: str, depth: int, limit: int) -> Any:
    if isinstance(value, dict | list) and depth > limit:
        raise DocumentError(f"Field {path or '(document)'!r} of a {table!r} document nests "
                            f"deeper than DOCUMENTS_MAX_DEPTH={limit}.",
                            code="DocumentTooDeep", table=table, field=path or None)
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            _check_text(value, table, path, "a string")
        return value
    if isinstance(value, int):
        if not -EXACT <= value <= EXACT:
            raise _bad(table, path, f"the integer {value}, beyond ±2**53: documents hold JSON "
                       "numbers, which are exact only up to 2**53 (store it as a string)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(table, path, f"{value!r} (JSON has no NaN or infinity)")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _bad(table, path, f"an object key {key!r} that is not a string")
            _check_text(key, table, path, "an object key")
            out[key] = _plain(item, table, f"{path}.{key}" if path else key, depth + 1, limit)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, table, f"{path}[{i}]", depth + 1, limit)
                for i, item in enumerate(value)]
    raise _bad(table, path, f"a {type(value).__name__} value (documents hold JSON values only)")


def _check_text(text: str, table: str, path: str, what: str) -> None:
    """Postgres JSON holds UTF-8 text without NUL: refuse what it cannot store."""
    if "\x00" in text:
        raise _bad(table, path, f"{what} with a NUL character (Postgres JSON cannot hold it)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(table, path, f"{what} with a lone surrogate ({text[:40]!r}), which is not "
                   "valid Unicode text") from None


def _bad(table: str, path: str, what: str) -> DocumentError:
    return DocumentError(f"Field {path!r} of a {table!r} document is {what}.",
                         code="InvalidDocument", table=table, field=path or None)


def as_document(row_id: str, created: float, data: Mapping[str, Any]) -> dict[str, Any]:
    """The document as functions see it: ``_id``, ``_creationTime`` and its fields."""
    return {"_id": row_id, "_creationTime": created, **data}
