"""SQL text that cannot be a query parameter: identifiers and literals in DDL, quoted as
PostgreSQL reads them (the quote character doubled inside), for statements built as text."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted identifier, inner double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a single-quoted string literal, inner single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
