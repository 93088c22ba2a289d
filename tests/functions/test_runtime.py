"""The function runtime against a real Postgres: validation, transactions, errors."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from reactive import FunctionError, values
from reactive.exceptions import (
    ArgumentError,
    ExecutionError,
    FunctionNotFound,
    ReadOnlyError,
    RequestError,
    ReturnValueError,
)
from reactive.functions.registry import registry
from reactive.functions.runtime import Call, runtime
from reactive.models import SessionRequest
from reactive.types import ADMIN, ANONYMOUS, FunctionKind, Identity
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def test_discovery_names_functions_by_app_and_module() -> None:
    assert "testapp:add_note" in registry
    assert "testapp/rooms:hello" in registry
    assert runtime.run("testapp/rooms:hello", {"name": "you"}) == "hello you"


def test_query_returns_documents_with_system_fields() -> None:
    # Given
    note = Note.objects.create(body="hi")
    # When
    [doc] = runtime.run("testapp:list_notes")
    # Then
    assert doc["_id"] == str(note.pk)
    assert doc["body"] == "hi"
    assert doc["author"] is None
    assert isinstance(doc["_creationTime"], float)


def test_mutation_commits_and_returns_id() -> None:
    new_id = runtime.run("testapp:add_note", {"body": "hello"})
    assert Note.objects.get(pk=int(new_id)).body == "hello"


def test_mutation_calling_mutation_shares_one_transaction() -> None:
    ids = runtime.run("testapp:add_two_notes", {"body": "x"})
    assert sorted(Note.objects.values_list("body", flat=True)) == ["x", "x!"]
    assert len(ids) == 2


def test_failed_mutation_rolls_back() -> None:
    with pytest.raises(FunctionError):
        runtime.run("testapp:add_then_fail", {"body": "gone"})
    assert not Note.objects.exists()


def test_query_cannot_write() -> None:
    with pytest.raises(ReadOnlyError, match=r"testapp:write_in_query"):
        runtime.run("testapp:write_in_query")
    assert not Note.objects.exists()


def test_action_cannot_write_directly() -> None:
    with pytest.raises(ReadOnlyError, match=r"ctx\.run_mutation"):
        runtime.run("testapp:write_in_action")
    assert not Note.objects.exists()


def test_async_action_calls_queries_mutations_and_internal_functions() -> None:
    Note.objects.create(body="a")
    result = runtime.run("testapp:summarize", {"prefix": "n="})
    assert result["count"] == 1
    assert result["secret"] == "internal"
    assert Note.objects.get(pk=int(result["id"])).body == "n=1 notes"


def test_sync_action_and_nested_action() -> None:
    assert runtime.run("testapp:action_calls_action") == 0
    assert Note.objects.filter(body="from a sync action").count() == 1


def test_bad_arguments_name_the_field_and_do_not_run() -> None:
    with pytest.raises(ArgumentError) as info:
        runtime.run("testapp:add_note", {"body": 5, "extra": True})
    fields = dict(info.value.errors)
    assert "valid string" in fields["body"]
    assert "extra" in fields
    assert not Note.objects.exists()


def test_missing_argument_is_reported() -> None:
    with pytest.raises(ArgumentError, match="body: Field required"):
        runtime.run("testapp:add_note", {})


def test_nested_types_are_validated_and_converted() -> None:
    result = runtime.run(
        "testapp:typed", {"point": {"x": 1, "y": "2"}, "tags": ["a"], "mode": "b"}
    )
    assert result == {"point": {"x": 1, "y": 2}, "tags": ["a"], "mode": "b", "n": None}
    with pytest.raises(ArgumentError, match=r"point\.y"):
        runtime.run("testapp:typed", {"point": {"x": 1, "y": "z"}, "tags": []})
    with pytest.raises(ArgumentError, match="mode"):
        runtime.run("testapp:typed", {"point": {"x": 1, "y": 2}, "tags": [], "mode": "c"})


def test_id_argument_validates_primary_key() -> None:
    note = Note.objects.create(body="x")
    assert runtime.run("testapp:get_note", {"id": str(note.pk)})["body"] == "x"
    with pytest.raises(ArgumentError, match=r"not a valid id of testapp\.Note"):
        runtime.run("testapp:get_note", {"id": "abc"})


def test_internal_function_hidden_from_clients_but_not_admin() -> None:
    outcome = runtime.call(Call("testapp:secret", {}, ANONYMOUS))
    assert outcome.caller_error and outcome.code == "FunctionNotFound"
    assert outcome.error == "Could not find public function for 'testapp:secret'."
    assert runtime.call(Call("testapp:secret", {}, ADMIN)).value == "internal"
    assert runtime.call(Call("testapp:secret", {}, ANONYMOUS, internal=True)).value == "internal"


def test_unknown_function_is_not_found() -> None:
    with pytest.raises(FunctionNotFound):
        runtime.run("testapp:nope")


def test_returns_validation() -> None:
    with pytest.raises(ReturnValueError, match="testapp:bad_return"):
        runtime.run("testapp:bad_return")


def test_crash_is_logged_and_hidden_unless_details_exposed(
    settings: object, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = runtime.call(Call("testapp:crash", {}, ANONYMOUS))
    assert outcome.error is not None and "Uncaught ValueError: boom" in outcome.error
    assert "function crashed function=testapp:crash" in caplog.text
    settings.REACTIVE = {**settings.REACTIVE, "EXPOSE_ERROR_DETAILS": False}  # type: ignore[attr-defined]
    hidden = runtime.call(Call("testapp:crash", {}, ANONYMOUS))
    assert hidden.error is not None and "boom" not in hidden.error
    assert hidden.error.endswith("Server Error")


def test_function_error_data_reaches_outcome() -> None:
    outcome = runtime.call(Call("testapp:add_note", {"body": " "}, ANONYMOUS))
    assert not outcome.caller_error and outcome.has_error_data
    assert outcome.error_data == {"code": "EMPTY", "field": "body"}


def test_invalid_result_key_is_an_error_and_the_call_fails_cleanly() -> None:
    outcome = runtime.call(Call("testapp:bad_key", {}, ANONYMOUS))
    assert not outcome.ok
    assert "café" in (outcome.error or "")


def test_session_user_reaches_ctx_auth() -> None:
    user = User.objects.create_user("ada", email="ada@example.com")
    result = runtime.run("testapp:whoami", {}, Identity(user_id=str(user.pk)))
    assert result == {"user": "ada", "admin": False, "tokenIdentifier": f"django|{user.pk}"}
    assert runtime.run("testapp:whoami")["user"] is None


def test_run_query_refuses_a_mutation() -> None:
    with pytest.raises(FunctionNotFound):
        runtime.run("testapp:nope")
    with pytest.raises(RequestError, match="is a mutation, not a query"):
        runtime.run("testapp:add_note", {"body": "x"}, expect=FunctionKind.QUERY)


def test_function_inside_outer_atomic_block_is_refused() -> None:
    from django.db import transaction

    with transaction.atomic(), pytest.raises(ExecutionError, match="outer transaction"):
        runtime.run("testapp:list_notes")


def test_caught_inner_mutation_rolls_back_only_its_own_writes() -> None:
    assert runtime.run("testapp:swallow_inner_failure", {"body": "x"}) == 1
    assert list(Note.objects.values_list("body", flat=True)) == ["outer x"]


@pytest.mark.parametrize("name", ["testapp:write_in_async_action", "testapp:write_with_cte"])
def test_actions_cannot_write_directly_in_any_form(name: str) -> None:
    with pytest.raises(ReadOnlyError, match="wrote to the database directly"):
        runtime.run(name)
    assert not Note.objects.exists()


def test_call_outcomes_are_wire_encoded_and_run_values_are_python() -> None:
    # Given a mutation whose result is a string id, and a query returning documents
    new_id = runtime.call(Call("testapp:add_note", {"body": "x"})).value
    # When the same query goes through both entry points
    outcome = runtime.call(Call("testapp:list_notes", {"limit": 5}))
    result = runtime.run("testapp:list_notes", {"limit": 5})
    # Then call hands back wire-encoded values and run the decoded ones
    assert [doc["_id"] for doc in result] == [new_id]
    assert values.decode(outcome.value) == result


def test_call_refuses_the_wrong_kind_as_a_caller_error() -> None:
    outcome = runtime.call(Call("testapp:add_note", {"body": "x"}, expect=FunctionKind.QUERY))
    assert outcome.caller_error and outcome.code == "BadRequest"
    assert "is a mutation, not a query" in (outcome.error or "")
    assert not Note.objects.exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [({"body": 5}, "ArgumentValidationError"), ({}, "ArgumentValidationError"),
     ({"body": "x", "extra": 1}, "ArgumentValidationError")],
)
def test_call_with_malformed_arguments_is_a_caller_error(
    args: dict[str, object], code: str
) -> None:
    outcome = runtime.call(Call("testapp:add_note", args))
    assert outcome.caller_error and outcome.code == code and not outcome.ok
    assert not Note.objects.exists()


def test_a_mutation_called_once_per_request_runs_once() -> None:
    # Given one (session, request) pair sent twice, as a reconnecting client re-sends it
    first = Call("testapp:add_note", {"body": "once"}, once=("session-a", 7))
    # When both arrive
    a, b = runtime.call(first), runtime.call(first)
    # Then the mutation ran once and the repeat got the first result
    assert a.ok and a.value == b.value
    assert Note.objects.filter(body="once").count() == 1
    # and another request id runs again
    assert runtime.call(Call("testapp:add_note", {"body": "once"}, once=("session-a", 8))).ok
    assert Note.objects.filter(body="once").count() == 2


def test_a_failed_mutation_called_once_records_nothing() -> None:
    failing = Call("testapp:add_note", {"body": " "}, once=("session-b", 1))
    assert runtime.call(failing).has_error_data
    assert not SessionRequest.objects.filter(session_id="session-b").exists()


async def test_acall_runs_sync_and_async_functions_like_call() -> None:
    assert (await runtime.acall(Call("testapp/rooms:hello", {"name": "a"}))).value == "hello a"
    summary = await runtime.acall(Call("testapp:summarize", {"prefix": "n="}))
    assert summary.ok, summary
    assert values.decode(summary.value)["count"] == 0
    missing = await runtime.acall(Call("testapp:nope"))
    assert missing.caller_error and missing.code == "FunctionNotFound"


def test_execute_still_works_for_one_release_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="runtime.call"):
        outcome = runtime.execute("testapp:secret", {}, ANONYMOUS)
    assert outcome.code == "FunctionNotFound"


def test_call_runs_an_async_action_from_sync_code() -> None:
    outcome = runtime.call(Call("testapp:summarize", {"prefix": "n="}))
    assert outcome.ok, outcome
    assert values.decode(outcome.value)["count"] == 0
