"""Tests for reactive.values: the convex_encoded_json encoding, clean JSON and timestamps."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from convex.values import ConvexInt64, convex_to_json, json_to_convex
from hypothesis import given
from hypothesis import strategies as st

from reactive.exceptions import ValueDecodingError, ValueEncodingError
from reactive.values import (
    MAX_DEPTH,
    ConvexValue,
    Int64,
    decode,
    decode_ts,
    encode,
    encode_ts,
    format_path,
    to_clean_json,
)


def _wire(value: ConvexValue) -> Any:
    """What a client receives: the encoded value written and parsed as JSON."""
    return json.loads(json.dumps(encode(value), allow_nan=False))


def _nested(levels: int) -> ConvexValue:
    value: ConvexValue = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Examples from the protocol spec -------------------------------------------------------------


def test_encode_int64_matches_spec_example() -> None:
    assert encode(Int64(3)) == {"$integer": "AwAAAAAAAAA="}


def test_encode_nan_matches_spec_example() -> None:
    assert encode(math.nan) == {"$float": "AAAAAAAA+H8="}


def test_encode_ts_zero_matches_spec_example() -> None:
    assert encode_ts(0) == "AAAAAAAAAAA="


def test_decode_spec_examples_give_python_values() -> None:
    assert decode({"$integer": "AwAAAAAAAAA="}) == 3
    assert math.isnan(decode({"$float": "AAAAAAAA+H8="}))  # type: ignore[arg-type]
    assert decode_ts("AAAAAAAAAAA=") == 0


# Numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, -1, 2**53 - 1, -(2**53 - 1)])
def test_encode_safe_int_is_json_float(n: int) -> None:
    encoded = encode(n)
    assert encoded == n
    assert type(encoded) is float


def test_encode_safe_int_is_accepted_by_python_http_client() -> None:
    # The Python client's json_to_convex rejects JSON integers such as `5`; floats pass.
    assert json_to_convex(_wire({"n": 5, "m": [2**53 - 1]})) == {"n": 5.0, "m": [2.0**53 - 1]}


@pytest.mark.parametrize("n", [2**53, -(2**53), 2**63 - 1, -(2**63)])
def test_encode_large_int_is_integer(n: int) -> None:
    encoded = encode(n)
    assert encoded == {"$integer": encode(Int64(n))["$integer"]}  # type: ignore[index,call-overload]
    assert decode(encoded) == n


def test_encode_int_beyond_int64_is_rejected() -> None:
    with pytest.raises(ValueEncodingError, match=r"9223372036854775808 is outside"):
        encode(2**63)
    with pytest.raises(ValueEncodingError, match="outside"):
        encode(-(2**63) - 1)


def test_encode_huge_int_reports_bits_not_digits() -> None:
    with pytest.raises(ValueEncodingError, match="of 20001 bits"):
        encode(2**20000)


def test_encode_bool_stays_bool() -> None:
    assert encode([True, False]) == [True, False]
    assert decode([True, False]) == [True, False]


def test_int64_out_of_range_is_rejected_at_construction() -> None:
    Int64(2**63 - 1)
    Int64(-(2**63))
    with pytest.raises(ValueError, match="2\\*\\*63"):
        Int64(2**63)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        Int64(-(2**63) - 1)


def test_int64_non_int_is_rejected_at_construction() -> None:
    with pytest.raises(TypeError):
        Int64(True)
    with pytest.raises(TypeError):
        Int64(1.0)  # type: ignore[arg-type]


def test_encode_int64_matches_python_client() -> None:
    for n in (0, 3, -1, 2**63 - 1, -(2**63)):
        assert encode(Int64(n)) == convex_to_json(ConvexInt64(n))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "AAAAAAAA8H8="),
        (-math.inf, "AAAAAAAA8P8="),
        (-0.0, "AAAAAAAAAIA="),
    ],
)
def test_encode_special_float_is_float_object(value: float, expected: str) -> None:
    assert encode(value) == {"$float": expected}
    assert encode(value) == convex_to_json(value)


def test_encode_negative_zero_round_trips_with_sign() -> None:
    decoded = decode(_wire(-0.0))
    assert decoded == 0.0
    assert isinstance(decoded, float)
    assert math.copysign(1.0, decoded) == -1.0


def test_encode_plain_float_is_number() -> None:
    assert encode([0.0, 1.5, -2.25, 1e300]) == [0.0, 1.5, -2.25, 1e300]


def test_decode_json_int_stays_int_and_float_stays_float() -> None:
    assert type(decode(5)) is int
    assert type(decode(5.0)) is float


def test_decode_json_int_beyond_safe_range_becomes_float() -> None:
    decoded = decode(2**60)
    assert type(decoded) is float
    assert decoded == 2.0**60


def test_decode_json_int_too_large_for_float_is_rejected() -> None:
    with pytest.raises(ValueDecodingError, match="too large"):
        decode(10**400)


# Bytes, containers ---------------------------------------------------------------------------


def test_encode_bytes_like_is_standard_base64() -> None:
    raw = b"\xfb\xff\x00"
    assert encode(raw) == {"$bytes": "+/8A"}
    assert encode(bytearray(raw)) == {"$bytes": "+/8A"}  # type: ignore[arg-type]
    assert encode(memoryview(raw)) == {"$bytes": "+/8A"}  # type: ignore[arg-type]
    assert decode({"$bytes": "+/8A"}) == raw


def test_encode_tuple_is_array() -> None:
    assert encode((1, "a", None)) == [1.0, "a", None]  # type: ignore[arg-type]


def test_encode_unknown_type_names_type_and_path() -> None:
    with pytest.raises(ValueEncodingError, match=r"result\[3\]\.author: .*type set"):
        encode([0, 1, 2, {"author": {1}}], root="result")  # type: ignore[dict-item]


def test_encode_output_is_json_without_nan() -> None:
    value: ConvexValue = {"a": [math.nan, math.inf, b"x", 2**60, Int64(1), None, "s"]}
    json.dumps(encode(value), allow_nan=False)


# Field names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("café", "printable ASCII"),
        ("tab\there", "printable ASCII"),
        ("del\x7f", "printable ASCII"),
        ("$x", r"starts with '\$'"),
        ("k" * 1025, "1025 characters"),
    ],
)
def test_encode_invalid_field_name_is_rejected(key: str, message: str) -> None:
    with pytest.raises(ValueEncodingError, match=message):
        encode({key: 1})


def test_encode_invalid_field_name_names_key_and_path() -> None:
    with pytest.raises(ValueEncodingError, match=r"result\[3\]\.author: field name 'café'"):
        encode([0, 1, 2, {"author": {"café": 1}}], root="result")


def test_encode_non_string_key_is_rejected() -> None:
    with pytest.raises(ValueEncodingError, match="must be strings"):
        encode({1: "a"})  # type: ignore[dict-item]


def test_encode_boundary_field_names_are_accepted() -> None:
    value: ConvexValue = {"k" * 1024: 1.0, " ~!": 2.0, "": 3.0, "_id": "x"}
    assert encode(value) == value


def test_decode_invalid_field_name_is_rejected() -> None:
    with pytest.raises(ValueDecodingError, match=r"args\.x: field name 'café'"):
        decode({"x": {"café": 1}}, root="args")


def test_format_path_quotes_non_identifier_keys() -> None:
    assert format_path("result", [3, "author", "a b", 0]) == "result[3].author['a b'][0]"


# Depth ---------------------------------------------------------------------------------------


def test_encode_accepts_max_depth() -> None:
    assert encode(_nested(MAX_DEPTH)) == _nested(MAX_DEPTH)
    assert decode(_nested(MAX_DEPTH)) == _nested(MAX_DEPTH)


def test_encode_rejects_deeper_than_max_depth() -> None:
    with pytest.raises(ValueEncodingError, match="nested at most 64"):
        encode(_nested(MAX_DEPTH + 1))
    with pytest.raises(ValueEncodingError, match="nested at most 64"):
        to_clean_json(_nested(MAX_DEPTH + 1))


def test_encode_self_referencing_value_is_rejected_without_recursion_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueEncodingError, match="nested at most"):
        encode(loop)


def test_decode_rejects_deeper_than_max_depth() -> None:
    data = _nested(100_000)  # far beyond Python's recursion limit
    with pytest.raises(ValueDecodingError, match="nested at most 64"):
        decode(data)


# Malformed input to decode -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"$integer": "AwAA"}, "exactly 8 bytes, got 3"),
        ({"$float": "AAAAAAAAAAAAAAA="}, "exactly 8 bytes, got 11"),
        ({"$integer": "not base64!"}, "not valid base64"),
        ({"$bytes": "AAA"}, "not valid base64"),  # missing padding
        ({"$bytes": "-_8A"}, "not valid base64"),  # URL-safe alphabet is not used for values
        ({"$bytes": "é"}, "not valid base64"),
        ({"$integer": 3}, "base64 string, got int"),
        ({"$set": []}, r"\$set is no longer supported"),
        ({"$map": []}, r"\$map is no longer supported"),
        ({"$foo": "x"}, r"starts with '\$'"),
        ({"$integer": "AwAAAAAAAAA=", "x": 1}, r"starts with '\$'"),
        ([{"a": {"$bad": 1}}], r"value\[0\]\.a: field name '\$bad'"),
        ({1, 2}, "set is not a JSON value"),
        ((1, 2), "tuple is not a JSON value"),
        (b"x", "bytes is not a JSON value"),
        (object(), "object is not a JSON value"),
    ],
)
def test_decode_malformed_input_is_rejected(data: Any, message: str) -> None:
    with pytest.raises(ValueDecodingError, match=message):
        decode(data)


def test_decode_accepts_non_special_float_object() -> None:
    # Clients never send this (they reject it themselves), but accepting it is harmless.
    assert decode({"$float": "AAAAAAAA+D8="}) == 1.5


def test_decode_python_client_output() -> None:
    sent: Any = {"i": ConvexInt64(-5), "f": math.inf, "b": b"\x00", "n": 7}
    sent = convex_to_json(sent)
    assert decode(sent) == {"i": -5, "f": math.inf, "b": b"\x00", "n": 7.0}


# Timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [0, 1, 1_700_000_000_000_000_000, 2**63 - 1])
def test_encode_ts_round_trips(ts: int) -> None:
    encoded = encode_ts(ts)
    assert len(encoded) == 12
    assert encoded.endswith("=")
    assert decode_ts(encoded) == ts


@pytest.mark.parametrize("ts", [-1, 2**63, True, 1.0])
def test_encode_ts_out_of_range_is_rejected(ts: Any) -> None:
    with pytest.raises(ValueEncodingError):
        encode_ts(ts)


def test_decode_ts_accepts_url_safe_alphabet() -> None:
    ts = int.from_bytes(b"\xfb\xff\xff\xff\xff\xff\xff\x00", "little")
    assert encode_ts(ts) == "+////////wA="
    assert decode_ts("-________wA=") == ts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("AAAAAAAAAA==", "8 bytes"),  # 7 bytes
        ("AAAAAAAAAAAA", "8 bytes"),  # 9 bytes
        ("AAAAAAAAAAA", "not valid base64"),  # padding is required
        ("AAAAAAAA!AA=", "not valid base64"),
        ("//////////8=", "at most 2\\*\\*63-1"),  # 2**64-1
        ("AAAAAAAAAIA=", "at most 2\\*\\*63-1"),  # 2**63
        (0, "base64 string, got int"),
        (None, "base64 string, got NoneType"),
    ],
)
def test_decode_ts_malformed_is_rejected(data: Any, message: str) -> None:
    with pytest.raises(ValueDecodingError, match=message):
        decode_ts(data)


# Clean JSON ----------------------------------------------------------------------------------


def test_to_clean_json_uses_strings_for_lossy_values() -> None:
    value: ConvexValue = {
        "small": 5,
        "big": 2**60,
        "int64": Int64(3),
        "bytes": b"\xfb\xff\x00",
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "nzero": -0.0,
        "list": (1.5, None, True, "s"),  # type: ignore[dict-item]
    }
    clean = to_clean_json(value)
    assert clean == {
        "small": 5.0,
        "big": str(2**60),
        "int64": "3",
        "bytes": "+/8A",
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "nzero": -0.0,
        "list": [1.5, None, True, "s"],
    }
    json.dumps(clean, allow_nan=False)


def test_to_clean_json_validates_like_encode() -> None:
    with pytest.raises(ValueEncodingError, match=r"value\.a: field name '\$b'"):
        to_clean_json({"a": {"$b": 1}})


# Properties ----------------------------------------------------------------------------------

_field_names = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).filter(
    lambda key: not key.startswith("$")
)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
    | st.builds(Int64, st.integers(min_value=-(2**63), max_value=2**63 - 1))
)
_values = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_field_names, children),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN, -0.0 differs from 0.0 and Int64(n) equals n."""
    if isinstance(a, Int64):
        a = a.value
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return (type(a) is type(b) and a == b) or (type(a) is int and type(b) is float and a == b)


@given(_values)
def test_decode_inverts_encode_through_json(value: ConvexValue) -> None:
    assert _same(value, decode(_wire(value)))


@given(_values)
def test_encode_output_is_understood_by_python_client(value: ConvexValue) -> None:
    received = json_to_convex(_wire(value))
    expected = decode(_wire(value))
    assert _same(expected, _from_python_client(received))


def _from_python_client(value: Any) -> Any:
    if isinstance(value, ConvexInt64):
        return value.value
    if isinstance(value, list):
        return [_from_python_client(item) for item in value]
    if isinstance(value, dict):
        return {key: _from_python_client(item) for key, item in value.items()}
    return value
