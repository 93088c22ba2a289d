"""Sentry: events made during a function call carry its name and its arguments' shape, never
their values; checked with a real sentry_sdk, a fake DSN and a transport keeping envelopes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.test import Client
from sentry_sdk.integrations.django import DjangoIntegration

from reactive.functions.runtime import Call, runtime
from reactive.observability.sentry import TAG_LIMIT, before_send, render, shape

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SECRETS = ("alice.secret@example.com", "Oslo-secret", "vip-secret")
ARGS = {"email": SECRETS[0], "profile": {"age": 41, "city": SECRETS[1],
                                         "nested": {"deep": [1, "x", 2]}},
        "tags": [SECRETS[2]]}


@pytest.fixture
def envelopes() -> Iterator[list[dict[str, Any]]]:
    """Sentry on, with a fake DSN, our hook, and every event kept here instead of sent."""
    events: list[dict[str, Any]] = []

    class Keep(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.type == "event":
                    events.append(item.payload.json)

    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=Keep,
                    before_send=before_send, integrations=[DjangoIntegration()],
                    include_local_variables=True)
    try:
        yield events
    finally:
        sentry_sdk.flush(timeout=5)
        sentry_sdk.init()  # no DSN: disabled again


def tagged(events: list[dict[str, Any]], function: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("tags", {}).get("function") == function]


def test_a_crash_is_tagged_with_the_function_and_its_arguments_shape(
    envelopes: list[dict[str, Any]],
) -> None:
    # When a function crashes with structured arguments
    outcome = runtime.call(Call("testapp/observe:crash_with", ARGS))
    sentry_sdk.flush(timeout=5)
    # Then one event carries the traceback, the function, the request id and the shape
    assert not outcome.ok
    [event] = tagged(envelopes, "testapp/observe:crash_with")
    assert event["tags"]["request_id"] in outcome.error
    assert event["tags"]["args_shape"] == (
        "{email: str, profile: {age: int, city: str, nested: {deep: [int | str]}}, tags: [str]}")
    assert event["contexts"]["function"]["args_shape"]["profile"]["nested"] == {
        "deep": ["int", "str"]}
    error = event["exception"]["values"][-1]
    assert (error["type"], error["value"]) == ("ValueError", "no profile for 24 characters")
    # and no value anywhere: not in tags, not in the frames' locals
    text = json.dumps(event)
    assert not [s for s in SECRETS if s in text], text
    assert all("vars" not in f for f in error["stacktrace"]["frames"])


def test_an_error_logged_inside_a_call_over_http_is_tagged_and_its_body_dropped(
    envelopes: list[dict[str, Any]],
) -> None:
    # When a mutation called over HTTP logs an error itself
    response = Client().post("/api/mutation", content_type="application/json",
                             data={"path": "testapp/observe:complain", "format": "json",
                                   "args": {"email": SECRETS[0], "count": 3}})
    sentry_sdk.flush(timeout=5)
    # Then its event is tagged, and the request's JSON (the arguments) is not sent
    assert response.json()["status"] == "success"
    [event] = tagged(envelopes, "testapp/observe:complain")
    assert event["tags"]["args_shape"] == "{email: str, count: int}"
    assert "request_id" not in event["tags"]  # not a crash
    assert SECRETS[0] not in json.dumps(event)


def test_a_request_body_sentry_attached_during_a_call_is_dropped() -> None:
    # (Under the test client Sentry attaches no body; behind ASGI servers it may.)
    from reactive.functions.current import running

    event = {"request": {"url": "/api/mutation", "data": {"args": {"email": SECRETS[0]}}}}
    with running("testapp/observe:complain", {"email": SECRETS[0], "count": 1}):
        sent = before_send(event, {})
    assert sent["request"]["data"] == "[removed: a function call's arguments]"
    assert SECRETS[0] not in json.dumps(sent)


def test_events_outside_function_calls_pass_unchanged(
    envelopes: list[dict[str, Any]],
) -> None:
    logging.getLogger("tests.elsewhere").error("outside any call %s", SECRETS[2])
    sentry_sdk.flush(timeout=5)
    [event] = [e for e in envelopes if "outside any call" in json.dumps(e)]
    assert "function" not in event.get("tags", {})
    assert "args_shape" not in event.get("tags", {})


def test_shapes_are_bounded_in_depth_keys_and_tag_length() -> None:
    wide = {f"k{n}": n for n in range(30)}
    described = shape({"wide": wide, "deep": {"a": {"b": {"c": {"d": 1}}}}, "none": None,
                       "blob": b"\x00", "empty": []})
    assert len(described["wide"]) == 21 and described["wide"]["..."] == "10 more keys"
    assert described["deep"] == {"a": {"b": {"c": {"d": "..."}}}}
    assert (described["none"], described["blob"], described["empty"]) == ("null", "bytes", [])
    event = before_send({}, {})
    assert event == {}  # nothing running: nothing added
    from reactive.functions.current import running

    with running("f:g", {"wide": wide}):
        tags = before_send({}, {})["tags"]
    assert len(tags["args_shape"]) == TAG_LIMIT and tags["args_shape"].endswith("...")
    assert render(["int", {"a": "str"}]) == "[int | {a: str}]"
