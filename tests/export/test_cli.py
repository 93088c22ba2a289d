"""The official Convex CLI (npm ``convex``, self-hosted mode) against a live server: ``data``,
``run``, ``export``, ``import`` and ``logs``, exactly as a developer types them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from tests.conftest import JS_DIR
from tests.support.waiting import wait_for
from tests.testapp.models import Account, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

KEY = "tests-admin-key-0123456789"
CLI = JS_DIR / "node_modules" / "convex" / "bin" / "main.js"


class Cli:
    def __init__(self, node: str, url: str, project: Path) -> None:
        self.node, self.project = node, project
        self.env = {**os.environ, "CI": "1", "CONVEX_SELF_HOSTED_URL": url,
                    "CONVEX_SELF_HOSTED_ADMIN_KEY": KEY, "NO_COLOR": "1"}
        for name in ("CONVEX_DEPLOYMENT", "CONVEX_DEPLOY_KEY"):
            self.env.pop(name, None)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.node, str(CLI), *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=90)
        if check and done.returncode != 0:
            raise AssertionError(f"convex {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([self.node, str(CLI), *args], cwd=self.project, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def cli(node: str, live_server_url: str, tmp_path: Path) -> Cli:
    project = tmp_path / "app"
    project.mkdir()
    version = json.loads((JS_DIR / "node_modules/convex/package.json").read_text())["version"]
    (project / "package.json").write_text(json.dumps(
        {"name": "app", "private": True, "dependencies": {"convex": version}}))
    (project / "node_modules").symlink_to(JS_DIR / "node_modules")
    return Cli(node, live_server_url, project)


def test_cli_data_lists_tables_then_a_tables_documents(cli: Cli) -> None:
    Note.objects.bulk_create(Note(body=f"n{i}") for i in range(12))  # ids past 9 and 10
    tables = cli("data").stdout.split()
    assert "testapp_note" in tables and "auth_user" in tables
    rows = cli("data", "testapp_note", "--format", "jsonl", "--limit", "3").stdout.split("\n")
    assert [json.loads(r)["body"] for r in rows if r.strip()] == ["n11", "n10", "n9"]
    assert cli("data", "no_such_table", check=False).returncode != 0


def test_cli_run_calls_a_function_with_json_args(cli: Cli) -> None:
    out = cli("run", "testapp:add_note", '{"body": "from the cli"}').stdout
    assert Note.objects.get(body="from the cli").pk == int(json.loads(out))
    # Internal functions run too: the CLI holds the admin key
    assert cli("run", "testapp/rooms:hello", '{"name": "cli"}').stdout.strip() == '"hello cli"'
    failed = cli("run", "testapp:add_note", '{"body": 5}', check=False)
    assert failed.returncode != 0 and "body" in failed.stdout + failed.stderr


def test_cli_export_then_import_round_trips_a_table(cli: Cli, tmp_path: Path) -> None:
    # Given
    Account.objects.create(name="a", balance=10)
    Account.objects.create(name="b", balance=20)
    path = tmp_path / "backup.zip"
    # When exported with the CLI
    cli("export", "--path", str(path))
    with zipfile.ZipFile(path) as archive:
        assert "testapp_account/documents.jsonl" in archive.namelist()
    # And imported back after a wipe
    Account.objects.all().delete()
    out = cli("import", "--table", "testapp_account", "--replace", "-y",
              str(_one_table(path, "testapp_account", tmp_path)))
    # Then
    assert "Added 2 documents" in out.stdout + out.stderr
    assert sorted(Account.objects.values_list("name", "balance")) == [("a", 10), ("b", 20)]
    # And a whole ZIP imports with --replace
    Account.objects.create(name="c", balance=1)
    cli("import", "--replace", "-y", str(path))
    assert sorted(Account.objects.values_list("name", flat=True)) == ["a", "b"]


def test_cli_imports_a_csv_typed_by_the_model(cli: Cli, tmp_path: Path) -> None:
    # Given a CSV written by reactive_export
    Account.objects.create(name="a", balance=2**40)
    path = tmp_path / "accounts.csv"
    call_command("reactive_export", str(path), "--table", "testapp_account", "--no-progress",
                 stdout=StringIO(), stderr=StringIO())
    Account.objects.all().delete()
    # When the CLI imports it, then the row is back, typed
    out = cli("import", "--table", "testapp_account", "-y", str(path))
    assert "Added 1 documents" in out.stdout + out.stderr
    assert list(Account.objects.values_list("name", "balance")) == [("a", 2**40)]
    # And a bad cell fails the import naming its row and column, changing nothing
    path.write_text("_id,name,balance\n9,b,1\n10,c,lots\n", encoding="utf-8")
    failed = cli("import", "--table", "testapp_account", "--append", "-y", str(path),
                 check=False)
    assert failed.returncode != 0
    assert "row 2, column 'balance'" in failed.stdout + failed.stderr
    assert Account.objects.count() == 1


def _one_table(path: Path, table: str, tmp: Path) -> Path:
    out = tmp / f"{table}.jsonl"
    with zipfile.ZipFile(path) as archive:
        out.write_bytes(archive.read(f"{table}/documents.jsonl"))
    return out


@pytest.fixture
def logs_process(cli: Cli) -> Iterator[subprocess.Popen[str]]:
    process = cli.popen("logs")
    yield process
    process.kill()
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def test_cli_logs_shows_function_log_lines(cli: Cli, logs_process: subprocess.Popen[str]) -> None:
    # Given `convex logs` watching (its first poll's entries are history, not shown)
    output = bytearray()
    assert logs_process.stdout is not None
    fd = logs_process.stdout.fileno()
    os.set_blocking(fd, False)  # read what has arrived; the text layer cannot read "nothing yet"

    def saw(text: str) -> bool:
        cli("run", "testapp/dataio:chatty", '{"word": "tailed"}')
        with contextlib.suppress(BlockingIOError):
            output.extend(os.read(fd, 1 << 16))
        return text in output.decode(errors="replace")

    # When a function logs, Then the CLI prints its lines tagged with the function
    wait_for(lambda: saw("said tailed 0"), timeout=60, interval=0.5, what="the logs output")
    lines = output.decode(errors="replace").splitlines()
    assert any("[CONVEX Q(testapp/dataio:chatty)] [WARN]" in line and "careful tailed" in line
               for line in lines), lines


# -- malformed input on the CLI's endpoints ------------------------------------------------------


def _post(url: str, path: str, key: str | None = KEY, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Convex {key}"} if key else {}
    return requests.post(f"{url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/import/upload_part", b"x", 400, "BadRequest"),
    ("/api/import/upload_part?uploadToken=t&partNumber=0", b"x", 400, "BadRequest"),
    ("/api/import/finish_upload", b"[]", 400, "BadRequest"),
    ("/api/import/finish_upload", b"{", 400, "BadJson"),
    ("/api/import/finish_upload", json.dumps({"import": {"format": "zip"}, "uploadToken": "t",
                                              "partTokens": ["1"]}).encode(), 400, "BadImport"),
    ("/api/import/finish_upload", json.dumps({"import": {"format": "csv"}, "uploadToken": "t",
                                              "partTokens": []}).encode(), 400, "BadImport"),
    ("/api/perform_import", json.dumps({"importId": "99999"}).encode(), 400, "BadImport"),
    ("/api/perform_import", json.dumps({"importId": 5}).encode(), 400, "BadRequest"),
])
def test_bad_import_requests_get_clear_errors(
    live_server_url: str, path: str, body: bytes, status: int, code: str
) -> None:
    response = _post(live_server_url, path, data=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def test_cli_endpoints_refuse_callers_without_the_admin_key(live_server_url: str) -> None:
    assert _post(live_server_url, "/api/export/request/zip", key=None).status_code == 401
    assert _post(live_server_url, "/api/import/start_upload", key="x" * 20).status_code == 401
    logs = requests.get(f"{live_server_url}/api/stream_function_logs?cursor=0", timeout=10)
    assert logs.status_code == 401
    bad = requests.get(f"{live_server_url}/api/stream_function_logs?cursor=abc", timeout=10,
                       headers={"Authorization": f"Convex {KEY}"})
    assert bad.status_code == 400
    missing = requests.get(f"{live_server_url}/api/export/zip/123", timeout=10,
                           headers={"Authorization": f"Convex {KEY}"})
    assert missing.status_code == 404 and missing.json()["code"] == "ExportNotFound"


def test_system_functions_are_invisible_without_the_admin_key(live_server_url: str) -> None:
    body = {"path": "_system/cli/tables", "args": {}, "format": "json"}
    anonymous = requests.post(f"{live_server_url}/api/query", json=body, timeout=10)
    assert anonymous.status_code == 404
    admin = requests.post(f"{live_server_url}/api/query", json=body, timeout=10,
                          headers={"Authorization": f"Convex {KEY}"})
    assert admin.json()["status"] == "success"
    assert {"name": "testapp_note"} in admin.json()["value"]["page"]
