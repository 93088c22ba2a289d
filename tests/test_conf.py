"""Settings validation and the system checks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from reactive.checks import check_database, check_settings
from reactive.conf import reactive_settings


def test_defaults_are_read_and_overrides_apply_at_use_time(settings: Any) -> None:
    assert reactive_settings().MUTATION_MAX_ATTEMPTS == 8
    assert reactive_settings().QUERY_STATEMENT_TIMEOUT == 5.0
    settings.REACTIVE = {"MUTATION_MAX_ATTEMPTS": 3}
    assert reactive_settings().MUTATION_MAX_ATTEMPTS == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"MUTATION_MAX_ATTEMPTS": 0}, "REACTIVE['MUTATION_MAX_ATTEMPTS'] is invalid"),
        ({"MUTATION_MAX_ATTEMPTS": "many"}, "MUTATION_MAX_ATTEMPTS"),
        ({"NOT_A_SETTING": 1}, "REACTIVE['NOT_A_SETTING'] is not a known setting"),
        ({"ADMIN_KEY": "short"}, "ADMIN_KEY"),
        ({"CORS_ALLOWED_ORIGINS": "http://x"}, "CORS_ALLOWED_ORIGINS"),
        ([1, 2], "settings.REACTIVE must be a dict, not list"),
        ({"WEBSOCKET_SESSION_RECHECK_SECONDS": 0}, "WEBSOCKET_SESSION_RECHECK_SECONDS"),
        ({"WEBSOCKET_SESSION_RECHECK_SECONDS": "often"}, "WEBSOCKET_SESSION_RECHECK_SECONDS"),
        ({"WEBSOCKET_MAX_RESULT_BYTES": 100}, "WEBSOCKET_MAX_RESULT_BYTES"),
        ({"WEBSOCKET_MAX_RESULT_BYTES": "big"}, "WEBSOCKET_MAX_RESULT_BYTES"),
        ({"REACTOR_RERUN_CONNECTIONS": 0}, "REACTOR_RERUN_CONNECTIONS"),
        ({"REACTOR_RERUN_CONNECTIONS": 65}, "REACTOR_RERUN_CONNECTIONS"),
        ({"REACTOR_RERUN_CONNECTIONS": 1.5}, "REACTOR_RERUN_CONNECTIONS"),
        ({"QUERY_STATEMENT_TIMEOUT": 0}, "REACTIVE['QUERY_STATEMENT_TIMEOUT'] is invalid"),
        ({"QUERY_STATEMENT_TIMEOUT": -1.5}, "QUERY_STATEMENT_TIMEOUT"),
        ({"QUERY_STATEMENT_TIMEOUT": "5s"}, "QUERY_STATEMENT_TIMEOUT"),
        ({"QUERY_STATEMENT_TIMEOUT": 10**6}, "QUERY_STATEMENT_TIMEOUT"),
    ],
)
def test_bad_settings_fail_the_check_and_raise_on_use(
    settings: Any, raw: Any, message: str
) -> None:
    settings.REACTIVE = raw
    [error] = check_settings()
    assert error.id == "reactive.E001"
    assert message in error.msg
    with pytest.raises(ImproperlyConfigured, match=message.replace("[", r"\[").replace("]", r"\]")):
        reactive_settings()


def test_database_check_requires_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    assert check_database() == []
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.sqlite3")
    [error] = check_database()
    assert error.id == "reactive.E002"
    assert "needs PostgreSQL" in error.msg


@pytest.mark.django_db(transaction=True)
def test_untracking_a_model_drops_its_triggers_at_the_next_install(settings: Any) -> None:
    from reactive.capture import triggers

    # Given testapp_note is tracked, then untracked by settings
    assert "testapp_note" in triggers.install()
    settings.REACTIVE = {**settings.REACTIVE, "UNTRACKED_MODELS": ["testapp.Note"]}
    # When triggers are installed again (as migrate does)
    triggers.install()
    # Then the untracked table lost its triggers and the others kept theirs
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c "
                       "ON c.oid = t.tgrelid WHERE t.tgname LIKE 'reactive\\_%%'")
        tables = {name for (name,) in cursor.fetchall()}
    assert "testapp_note" not in tables
    assert "testapp_account" in tables
    settings.REACTIVE = {**settings.REACTIVE, "UNTRACKED_MODELS": []}
    triggers.install()


def test_cors_wildcard_never_allows_credentials(settings: Any) -> None:
    from django.http import HttpResponse
    from django.test import RequestFactory

    from reactive.http.plumbing import with_cors

    settings.REACTIVE = {**settings.REACTIVE, "CORS_ALLOWED_ORIGINS": ["*"]}
    request = RequestFactory().post("/api/query", HTTP_ORIGIN="http://any.example")
    response = with_cors(request, HttpResponse())
    assert response["Access-Control-Allow-Origin"] == "*"
    assert not response.has_header("Access-Control-Allow-Credentials")
