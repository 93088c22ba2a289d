"""The shape of a document table: which fields have been written with which JSON types,
widened one document at a time, as JSON Schema, and checked against a document (enforcement).

A node is ``{"types": [...], "fields": {name: {"optional": bool, "shape": node}}, "items":
node}``; ``fields`` only once an object was seen, ``items`` once a non-empty array was.
Types are JSON Schema's: null, boolean, integer, number, string, array, object.
"""

from __future__ import annotations

import copy
from typing import Any

Node = dict[str, Any]
SAFE = 2**53  # integers beyond this are "number": they fit no int64 column as JS sends them


def type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float) and float(value).is_integer() and abs(value) <= SAFE:
        return "integer"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def widen(node: Node | None, value: Any) -> Node:
    """``node`` (None: nothing seen yet) widened to also describe ``value``; a new dict."""
    out: Node = copy.deepcopy(node) if node is not None else {"types": []}
    kind = type_of(value)
    if kind not in out["types"]:
        out["types"] = sorted({*out["types"], kind})
    if kind == "object":
        seen_before = "fields" in out
        fields: dict[str, Any] = out.setdefault("fields", {})
        for name, entry in fields.items():
            if name not in value:
                entry["optional"] = True
        for name, item in value.items():
            entry = fields.get(name)
            if entry is None:
                fields[name] = {"optional": seen_before, "shape": widen(None, item)}
            else:
                entry["shape"] = widen(entry["shape"], item)
    elif kind == "array":
        for item in value:
            out["items"] = widen(out.get("items"), item)
    return out


def violation(node: Node, value: Any, path: str = "") -> str | None:
    """Why ``value`` does not fit ``node`` (a sentence naming the field), or None if it does.

    Arrays whose items were never seen (only empty ones were written) take any items.
    """
    kind = type_of(value)
    allowed = set(node.get("types", []))
    if kind not in allowed and not (kind == "integer" and "number" in allowed):
        return (f"field {path or '(document)'!r} is {kind}, but the shape allows "
                f"{' | '.join(sorted(allowed)) or 'nothing'}")
    if kind == "object" and "fields" in node:
        fields = node["fields"]
        for name in value:
            if name not in fields:
                return f"field {_join(path, name)!r} is not in the shape"
        for name, entry in fields.items():
            if name not in value and not entry["optional"]:
                return f"field {_join(path, name)!r} is required by the shape but missing"
            if name in value:
                found = violation(entry["shape"], value[name], _join(path, name))
                if found:
                    return found
    if kind == "array" and "items" in node:
        for i, item in enumerate(value):
            found = violation(node["items"], item, f"{path}[{i}]")
            if found:
                return found
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def json_schema(node: Node, title: str | None = None) -> dict[str, Any]:
    """``node`` as a JSON Schema (draft 2020-12); a document's system fields included at the top."""
    schema = _schema(node)
    if title is not None:
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
                  **schema}
        properties = schema.setdefault("properties", {})
        properties["_id"] = {"type": "string"}
        properties["_creationTime"] = {"type": "number"}
        schema["required"] = sorted({*schema.get("required", []), "_id", "_creationTime"})
    return schema


def _schema(node: Node) -> dict[str, Any]:
    types = list(node.get("types", []))
    if "number" in types and "integer" in types:
        types.remove("integer")
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if "fields" in node:
        out["properties"] = {name: _schema(e["shape"]) for name, e in node["fields"].items()}
        out["required"] = sorted(n for n, e in node["fields"].items() if not e["optional"])
        out["additionalProperties"] = False
    if "items" in node:
        out["items"] = _schema(node["items"])
    return out
