"""The one decoder of call arguments as clients send them (HTTP, websocket, Reactor, CLI)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import values
from reactive.exceptions import BadRequest
from reactive.functions.arguments import decode_wire_args


@pytest.mark.parametrize(
    "raw",
    [None, [], {}, [{}]],
)
def test_no_arguments_in_any_accepted_form_is_an_empty_object(raw: Any) -> None:
    assert decode_wire_args(raw) == {}


def test_wrapped_and_bare_objects_decode_the_same() -> None:
    encoded = values.encode({"n": 2**40, "b": b"\x00\x01", "s": "x"})
    assert decode_wire_args([encoded]) == decode_wire_args(encoded)
    assert decode_wire_args(encoded) == {"n": 2**40, "b": b"\x00\x01", "s": "x"}


def test_clean_json_is_taken_as_is() -> None:
    raw = {"n": {"$integer": "AQAAAAAAAAA="}}
    assert decode_wire_args([raw], encoded=False) == raw


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ([{}, {}], "BadRequest", r"at most one object, not 2"),
        ([1], "BadRequest", r"must hold an object, not int"),
        ("x", "BadRequest", r"must hold an object, not str"),
        ([None], "BadRequest", r"must hold an object, not NoneType"),
        ([{"n": {"$integer": "??"}}], "BadConvexValue", r"args\.n"),
        ({"b": {"$bytes": "!!"}}, "BadConvexValue", r"args\.b"),
        ({"$set": []}, "BadConvexValue", r"not a valid Convex value"),
    ],
)
def test_malformed_arguments_are_refused_with_a_clear_error(
    raw: Any, code: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        decode_wire_args(raw)
    assert info.value.code == code
    assert info.value.http_status == 400
