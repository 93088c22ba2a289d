"""How Convex values and timestamps look on the wire (protocol §3.2-3.3).

Owns "convex_encoded_json" in both directions, its lossy clean-JSON variant, and the base64
form of 64-bit timestamps. Nothing else in the package builds or parses these shapes.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from reactive.exceptions import ValueDecodingError, ValueEncodingError

__all__ = [
    "MAX_DEPTH",
    "ConvexValue",
    "Int64",
    "JSONValue",
    "decode",
    "decode_ts",
    "encode",
    "encode_ts",
    "format_path",
    "to_clean_json",
]

MAX_DEPTH = 64  # Convex's nesting limit for values
MAX_FIELD_NAME_LENGTH = 1024
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Int64:
    """A Convex Int64 (a JavaScript ``bigint``): wrap an int to force the ``$integer`` encoding.

    Plain Python ints already become Int64 when they are too large for a float64; wrap small
    ones when the client must receive a ``bigint``. Raises ``TypeError`` if ``value`` is not an
    int and ``ValueError`` if it is outside -2**63..2**63-1.
    """

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise TypeError(f"Int64 needs an int, got {type(self.value).__qualname__}.")
        if not INT64_MIN <= self.value <= INT64_MAX:
            raise ValueError(f"Int64 must be within -2**63..2**63-1, got {self.value}.")


ConvexValue: TypeAlias = (
    bool | int | float | str | bytes | Int64 | list["ConvexValue"] | dict[str, "ConvexValue"] | None
)
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None


class _Invalid(Exception):
    """A problem found deep inside a value; containers add their path segment on the way out,
    so tracking the path costs nothing unless something is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str | int] = []  # innermost first


def format_path(root: str, segments: Iterable[str | int]) -> str:
    """Render a path into a value, outermost segment first: ``result[3].author``.

    Integer segments are list indexes; string segments are object keys, written ``.key`` when
    the key is a Python identifier and ``['key']`` otherwise.
    """
    parts = [root]
    for segment in segments:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif segment.isidentifier():
            parts.append(f".{segment}")
        else:
            parts.append(f"[{_short(segment)}]")
    return "".join(parts)


def encode(value: ConvexValue, *, root: str = "value") -> JSONValue:
    """Encode ``value`` as convex_encoded_json: a structure ``json.dumps`` can write as is.

    Ints within ±(2**53-1) become JSON floats (Convex Float64; the Python HTTP client rejects
    JSON integers such as ``5``), larger ints and ``Int64`` become ``{"$integer": ...}``; NaN,
    ±inf and -0.0 become ``{"$float": ...}``; bytes-like objects become ``{"$bytes": ...}``;
    tuples become arrays. The output never needs ``allow_nan``.

    Raises ``ValueEncodingError`` naming the path (``root`` is its first segment) for any other
    type, ints beyond int64, invalid field names, or nesting deeper than 64 levels.
    """
    try:
        return _encode(value, 0, clean=False)
    except _Invalid as exc:
        path = format_path(root, reversed(exc.segments))
        raise ValueEncodingError(f"Cannot encode {path}: {exc.reason}") from None


def to_clean_json(value: ConvexValue, *, root: str = "value") -> JSONValue:
    """Encode ``value`` in the lossy "json" format of ``/api/run`` (for humans and scripts).

    Same as ``encode`` except that Int64 values (``Int64`` and ints beyond ±(2**53-1)) become
    decimal strings, bytes become standard base64 strings, NaN and ±inf become ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, and -0.0 stays a number. Raises ``ValueEncodingError``
    under the same conditions as ``encode``.
    """
    try:
        return _encode(value, 0, clean=True)
    except _Invalid as exc:
        path = format_path(root, reversed(exc.segments))
        raise ValueEncodingError(f"Cannot encode {path}: {exc.reason}") from None


def decode(data: Any, *, root: str = "value") -> ConvexValue:
    """Decode convex_encoded_json (as produced by ``json.loads``) into Python values.

    ``{"$integer": ...}`` becomes an int, ``{"$float": ...}`` a float (any 8-byte value is
    accepted, even though the clients only send special floats), ``{"$bytes": ...}`` bytes.
    JSON integers within ±(2**53-1) stay ints; larger ones were float64 numbers on the client
    and become floats. Raises ``ValueDecodingError`` naming the path for ``$set``/``$map``,
    any other ``$`` key, bad base64, wrong byte lengths, invalid field names, non-JSON types,
    and nesting deeper than 64 levels.
    """
    try:
        return _decode(data, 0)
    except _Invalid as exc:
        path = format_path(root, reversed(exc.segments))
        raise ValueDecodingError(f"Cannot decode {path}: {exc.reason}") from None


def encode_ts(ts: int) -> str:
    """Encode a timestamp as the protocol's u64: padded standard base64 of 8 little-endian bytes.

    Raises ``ValueEncodingError`` unless ``ts`` is an int within 0..2**63-1 (the Rust client
    rejects anything above i64::MAX).
    """
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueEncodingError(f"A timestamp must be an int, got {type(ts).__qualname__}.")
    if not 0 <= ts <= INT64_MAX:
        raise ValueEncodingError(f"A timestamp must be within 0..2**63-1, got {ts}.")
    return base64.b64encode(ts.to_bytes(8, "little")).decode("ascii")


def decode_ts(s: str) -> int:
    """Decode a timestamp sent by a client (``maxObservedTimestamp``, ``startVersion.ts``...).

    Accepts the standard and the URL-safe alphabet (the npm client does); padding is required.
    Raises ``ValueDecodingError`` unless the string holds exactly 8 bytes encoding a value
    within 0..2**63-1.
    """
    if not isinstance(s, str):
        raise ValueDecodingError(f"A timestamp must be a base64 string, got {_type_name(s)}.")
    try:
        raw = base64.b64decode(s.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        raise ValueDecodingError(f"The timestamp {_short(s)} is not valid base64.") from None
    if len(raw) != 8:
        raise ValueDecodingError(f"A timestamp must hold 8 bytes, {_short(s)} holds {len(raw)}.")
    ts = int.from_bytes(raw, "little")
    if ts > INT64_MAX:
        raise ValueDecodingError(f"A timestamp must be at most 2**63-1, got {ts}.")
    return ts


# Encoding ------------------------------------------------------------------------------------


def _encode(value: object, depth: int, *, clean: bool) -> JSONValue:
    # bool before int: bool is an int subclass.
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return _encode_int(value, clean=clean)
    if isinstance(value, float):
        return _encode_float(value, clean=clean)
    if isinstance(value, dict):
        return _map_object(value, depth + 1, _encode_clean if clean else _encode_wire)
    if isinstance(value, list | tuple):
        return _map_array(value, depth + 1, _encode_clean if clean else _encode_wire)
    if isinstance(value, Int64):
        return str(value.value) if clean else _b64_special("$integer", _int64_bytes(value.value))
    if isinstance(value, bytes | bytearray | memoryview):
        encoded = base64.b64encode(value).decode("ascii")
        return encoded if clean else {"$bytes": encoded}
    raise _Invalid(
        f"a value of type {_type_name(value)} is not a Convex value; use None, bool, int, "
        "float, str, bytes, Int64, list, tuple or dict."
    )


def _encode_int(n: int, *, clean: bool) -> JSONValue:
    if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER:
        return float(n)
    if INT64_MIN <= n <= INT64_MAX:
        return str(n) if clean else _b64_special("$integer", _int64_bytes(n))
    shown = str(n) if n.bit_length() <= 128 else f"of {n.bit_length()} bits"
    raise _Invalid(f"the integer {shown} is outside the Int64 range -2**63..2**63-1.")


def _encode_float(x: float, *, clean: bool) -> JSONValue:
    if math.isfinite(x) and not (x == 0.0 and math.copysign(1.0, x) < 0):
        return x
    if not clean:
        # A plain finite number wrapped in $float makes both clients throw, hence the test above.
        return _b64_special("$float", struct.pack("<d", x))
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x  # -0.0 is a valid JSON number


def _int64_bytes(n: int) -> bytes:
    return n.to_bytes(8, "little", signed=True)


def _b64_special(key: str, raw: bytes) -> JSONValue:
    return {key: base64.b64encode(raw).decode("ascii")}


_encode_wire = functools.partial(_encode, clean=False)
_encode_clean = functools.partial(_encode, clean=True)


# Decoding ------------------------------------------------------------------------------------


def _decode(data: object, depth: int) -> ConvexValue:
    if data is None or isinstance(data, str | bool | float):
        return data
    if isinstance(data, int):
        if -MAX_SAFE_INTEGER <= data <= MAX_SAFE_INTEGER:
            return data
        try:
            return float(data)
        except OverflowError:
            raise _Invalid("the number is too large for a float64.") from None
    if isinstance(data, dict):
        if len(data) == 1:
            ((key, item),) = data.items()
            if key in ("$integer", "$float", "$bytes", "$set", "$map"):
                return _decode_special(key, item)
        return _map_object(data, depth + 1, _decode)
    if isinstance(data, list):
        return _map_array(data, depth + 1, _decode)
    raise _Invalid(f"a {_type_name(data)} is not a JSON value.")


def _decode_special(key: str, encoded: object) -> ConvexValue:
    if key in ("$set", "$map"):
        raise _Invalid(f"{key} is no longer supported by Convex; send an array or an object.")
    if not isinstance(encoded, str):
        raise _Invalid(f"{key} must hold a base64 string, got {_type_name(encoded)}.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise _Invalid(f"{key} holds {_short(encoded)}, which is not valid base64.") from None
    if key == "$bytes":
        return raw
    if len(raw) != 8:
        raise _Invalid(f"{key} must hold exactly 8 bytes, got {len(raw)}.")
    if key == "$integer":
        return int.from_bytes(raw, "little", signed=True)
    value: float = struct.unpack("<d", raw)[0]
    return value


# Shared --------------------------------------------------------------------------------------


def _map_object(obj: dict[Any, Any], depth: int, convert: Callable[[Any, int], T]) -> dict[str, T]:
    if depth > MAX_DEPTH:
        raise _Invalid(f"values may be nested at most {MAX_DEPTH} levels deep.")
    out: dict[str, T] = {}
    for key, item in obj.items():
        _check_field_name(key)
        try:
            out[key] = convert(item, depth)
        except _Invalid as exc:
            exc.segments.append(key)
            raise
    return out


def _map_array(items: Iterable[Any], depth: int, convert: Callable[[Any, int], T]) -> list[T]:
    if depth > MAX_DEPTH:
        raise _Invalid(f"values may be nested at most {MAX_DEPTH} levels deep.")
    out: list[T] = []
    for index, item in enumerate(items):
        try:
            out.append(convert(item, depth))
        except _Invalid as exc:
            exc.segments.append(index)
            raise
    return out


def _check_field_name(key: object) -> None:
    """Apply the field-name rules the npm client enforces on everything it receives."""
    if not isinstance(key, str):
        raise _Invalid(f"field names must be strings, got the {_type_name(key)} {_short(key)}.")
    if key.startswith("$"):
        raise _Invalid(f"field name {_short(key)} starts with '$', which Convex reserves.")
    if len(key) > MAX_FIELD_NAME_LENGTH:
        raise _Invalid(
            f"field name {_short(key)} has {len(key)} characters; the limit is "
            f"{MAX_FIELD_NAME_LENGTH}."
        )
    # For ASCII, isprintable() is exactly codes 32..126.
    if not (key.isascii() and key.isprintable()):
        bad = next(c for c in key if not 32 <= ord(c) <= 126)
        raise _Invalid(
            f"field name {_short(key)} contains {bad!r}; Convex field names may only contain "
            "printable ASCII (codes 32-126)."
        )


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(value: object, limit: int = 40) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits()
        text = f"<{_type_name(value)}>"
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"
