"""Management commands, run in-process with call_command and as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.support.servers import ROOT
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_reactive_functions_lists_name_kind_visibility_and_args() -> None:
    text = run("reactive_functions")
    line = next(row for row in text.splitlines() if row.startswith("testapp:add_note "))
    assert "mutation" in line
    assert "public" in line
    assert "(body: string)" in line
    assert "internal" in next(r for r in text.splitlines() if r.startswith("testapp:secret "))
    rows = json.loads(run("reactive_functions", "--json"))
    typed = next(r for r in rows if r["name"] == "testapp:typed")
    assert typed["args"]["required"] == ["point", "tags"]


def test_reactive_run_prints_result_and_runs_internal_functions() -> None:
    new_id = json.loads(run("reactive_run", "testapp:add_note", '{"body": "cli"}'))
    assert Note.objects.get(pk=int(new_id)).body == "cli"
    assert json.loads(run("reactive_run", "testapp:secret")) == "internal"
    assert json.loads(run("reactive_run", "testapp:big_int")) == {"$integer": "AAAAAAAAABA="}


def test_reactive_run_as_user_and_admin() -> None:
    User.objects.create_user("ada")
    assert json.loads(run("reactive_run", "testapp:whoami", "--user", "ada"))["user"] == "ada"
    assert json.loads(run("reactive_run", "testapp:whoami", "--admin"))["admin"] is True
    with pytest.raises(CommandError, match="No user with username or id 'bob'"):
        run("reactive_run", "testapp:whoami", "--user", "bob")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["testapp:add_note", "{oops"], "Arguments must be a JSON object"),
        (["testapp:add_note", "[1]"], "must be a JSON object, not list"),
        (["testapp:add_note", '{"body": {"$integer": "x"}}'], "args.body"),
        (["testapp:add_note", '{"body": 3}'], "body: Input should be a valid string"),
        (["testapp:nope"], "Could not find public function for 'testapp:nope'"),
        (["testapp:add_note", '{"body": " "}'], "error data: {\"code\": \"EMPTY\""),
    ],
)
def test_reactive_run_rejects_bad_input_clearly(argv: list[str], message: str) -> None:
    with pytest.raises(CommandError) as info:
        run("reactive_run", *argv)
    assert message in str(info.value)


def test_reactive_run_exits_non_zero_in_a_real_process(test_database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": test_database_url,
           "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-m", "django", "reactive_run", "testapp:crash"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Uncaught ValueError: boom" in done.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "django", "reactive_run", "testapp/rooms:hello", '{"name": "sh"}'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == "hello sh"


def test_reactive_functions_lists_http_actions() -> None:
    rows = json.loads(run("reactive_functions", "--json"))
    hook = next(r for r in rows if r["kind"] == "http" and "hooks/payment" in r["name"])
    assert hook["name"] == "POST /http/hooks/payment"
    assert hook["handler"] == "testapp/http:payment_webhook"
    assert any(r["name"] == "GET|POST /http/files/*" for r in rows)
    assert "GET|POST /http/whoami" in run("reactive_functions")
