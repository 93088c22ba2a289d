"""The streaming-export API (json_schemas, list_snapshot, document_deltas) on a live server,
against concurrent writers, a consumer killed mid-stream, and malformed requests."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection

from reactive.export.tables import exported_tables
from tests.support.waiting import wait_for
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

KEY = "tests-admin-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def get(url: str, path: str, key: str | None = KEY, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Convex {key}"} if key else {}
    return requests.get(f"{url}{path}", params=params, headers=headers, timeout=10)


def database_documents(table: str) -> dict[str, dict[str, Any]]:
    exported = exported_tables()[table]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT to_jsonb(t)::text FROM "{table}" t')
        docs = [exported.document(json.loads(text)) for (text,) in cursor.fetchall()]
    return {doc["_id"]: doc for doc in docs}


class Writers:
    """Threads inserting, updating and deleting notes through their own connections, some
    in multi-statement transactions, until stopped."""

    def __init__(self, url: str, count: int = 2) -> None:
        self.url, self.stop, self.writes = url, threading.Event(), 0
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                with conn.transaction():
                    for _ in range(rng.randint(1, 3)):
                        self._write(conn, rng)
                self.writes += 1

    def _write(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        roll = rng.random()
        if roll < 0.45:
            conn.execute("INSERT INTO testapp_note (body, created_at) VALUES (%s, now())",
                         [f"w{rng.random()}"])
        elif roll < 0.8:
            conn.execute("UPDATE testapp_note SET body = body || '+' WHERE id = (SELECT id FROM "
                         "testapp_note ORDER BY random() LIMIT 1)")
        else:
            conn.execute("DELETE FROM testapp_note WHERE id = (SELECT id FROM testapp_note "
                         "ORDER BY random() LIMIT 1)")


@pytest.fixture
def consumer_state(tmp_path: Path) -> Path:
    return tmp_path / "consumer.json"


def start_consumer(url: str, state: Path) -> subprocess.Popen[bytes]:
    with state.with_suffix(".log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.cdc_consumer", url, KEY, "testapp_note",
             str(state)], cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=log,
        )


@pytest.fixture
def consumers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state


def test_consumer_killed_and_resumed_ends_with_exactly_the_databases_rows(
    live_server_url: str, test_database_url: str, consumer_state: Path,
    consumers: list[subprocess.Popen[bytes]],
) -> None:
    # Given a table with more rows than one page, and writers running throughout
    Note.objects.bulk_create(Note(body=f"n{i}") for i in range(300))
    with Writers(test_database_url) as writers:
        # When a consumer snapshots and follows deltas, and is killed mid-stream
        first = start_consumer(live_server_url, consumer_state)
        consumers.append(first)
        wait_for(lambda: (s := read_state(consumer_state)) and s["phase"] == "deltas"
                 and s["pages"] >= 20, timeout=60, what="the consumer following deltas")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = writers.writes
        wait_for(lambda: writers.writes > killed_at + 50, what="writes while it is down")
        # ... and resumed from its saved cursor while writers keep going
        consumers.append(start_consumer(live_server_url, consumer_state))
        wait_for(lambda: (s := read_state(consumer_state)) and s["pages"] >= 40,
                 timeout=60, what="the resumed consumer")
    assert writers.writes > 100
    # Then, once the writers stopped, it converges on exactly the database's rows
    expected = database_documents("testapp_note")

    def converged() -> bool:
        state = read_state(consumer_state)
        if state is None or state["phase"] != "deltas":
            return False
        got = {k: {f: v for f, v in d.items() if f != "_ts"} for k, d in state["docs"].items()}
        return got == expected

    try:
        wait_for(converged, timeout=120, what="the consumer to match the database")
    except BaseException:
        print(difference(consumer_state, expected))
        raise
    assert consumers[-1].poll() is None, consumer_state.with_suffix(".log").read_text()


def difference(state_path: Path, expected: dict[str, dict[str, Any]]) -> str:
    """What the consumer got wrong, and its log: printed when it does not converge."""
    state = read_state(state_path) or {"docs": {}}
    got = {k: {f: v for f, v in d.items() if f != "_ts"} for k, d in state["docs"].items()}
    differ = [(got[k], expected[k]) for k in set(got) & set(expected) if got[k] != expected[k]]
    return (f"extra={sorted(set(got) - set(expected))[:5]} "
            f"missing={sorted(set(expected) - set(got))[:5]} differ={differ[:3]}\n"
            + state_path.with_suffix(".log").read_text()[-3000:])


def test_every_page_of_a_listing_shows_the_table_at_its_snapshot(live_server_url: str) -> None:
    # Given a listing started at a snapshot
    notes = Note.objects.bulk_create(Note(body=f"s{i}") for i in range(100))
    before = database_documents("testapp_note")
    page = get(live_server_url, "/api/list_snapshot", tableName="testapp_note").json()
    # When rows on later pages are updated, deleted and inserted before those pages are read
    Note.objects.filter(pk__in=[n.pk for n in notes[60:70]]).update(body="changed")
    Note.objects.filter(pk__in=[n.pk for n in notes[80:90]]).delete()
    Note.objects.create(body="new")
    listed = {d["_id"]: d for d in page["values"]}
    while page["hasMore"]:
        page = get(live_server_url, "/api/list_snapshot", tableName="testapp_note",
                   snapshot=page["snapshot"], cursor=page["cursor"]).json()
        listed.update((d["_id"], d) for d in page["values"])
    # Then the listing is the table as it was when it started
    assert {k: {f: v for f, v in d.items() if f != "_ts"} for k, d in listed.items()} == before
    # And the deltas after its snapshot hold exactly the changes since
    deltas = get(live_server_url, "/api/document_deltas", tableName="testapp_note",
                 cursor=page["snapshot"]).json()
    deleted = {d["_id"] for d in deltas["values"] if d.get("_deleted")}
    updated = {d["_id"] for d in deltas["values"] if d.get("body") == "changed"}
    assert deleted == {str(n.pk) for n in notes[80:90]}
    assert updated == {str(n.pk) for n in notes[60:70]}
    assert [d["body"] for d in deltas["values"] if d.get("body") == "new"] == ["new"]


def test_json_schemas_describe_each_table_and_the_delta_fields(live_server_url: str) -> None:
    schemas = get(live_server_url, "/api/json_schemas", deltaSchema="true",
                  format="json").json()
    note = schemas["testapp_note"]["properties"]
    assert note["_id"] == {"type": "string"} and note["body"] == {"type": "string"}
    assert note["author_id"] == {"type": ["integer", "null"]}
    assert note["_ts"] == {"type": "integer"} and note["_deleted"] == {"type": "boolean"}
    assert "_ts" not in get(live_server_url, "/api/json_schemas").json()["testapp_note"][
        "properties"]


def test_an_expired_cursor_gets_a_410_saying_to_resnapshot(live_server_url: str) -> None:
    # Given a cursor, then the log pruned past it (as the pruner records its horizon)
    snap = get(live_server_url, "/api/list_snapshot", tableName="testapp_note").json()
    Note.objects.create(body="after the cursor")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reactive_state SET int_value = pg_current_xact_id()::text::bigint "
                       "WHERE name = 'pruned'")
    try:
        # When / Then
        response = get(live_server_url, "/api/document_deltas", cursor=snap["snapshot"])
        assert response.status_code == 410
        assert response.json()["code"] == "CursorExpired"
        assert "new snapshot" in response.json()["message"]
        unknown = get(live_server_url, "/api/document_deltas", cursor="12345")
        assert unknown.status_code == 410 and unknown.json()["code"] == "CursorExpired"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE reactive_state SET int_value = NULL WHERE name = 'pruned'")


def test_a_truncate_after_the_cursor_is_refused_not_skipped(live_server_url: str) -> None:
    snap = get(live_server_url, "/api/list_snapshot", tableName="testapp_account").json()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE testapp_account")
    response = get(live_server_url, "/api/document_deltas", cursor=snap["snapshot"])
    assert response.status_code == 410 and "truncated" in response.json()["message"]


@pytest.mark.parametrize(("path", "params", "key", "status", "code"), [
    ("/api/json_schemas", {}, None, 401, "Unauthenticated"),
    ("/api/json_schemas", {}, "wrong-key-wrong-key", 401, "Unauthenticated"),
    ("/api/list_snapshot", {"tableName": "nope"}, KEY, 404, "TableNotFound"),
    ("/api/list_snapshot", {"format": "csv"}, KEY, 400, "BadFormat"),
    ("/api/list_snapshot", {"snapshot": "x"}, KEY, 400, "BadCursor"),
    ("/api/list_snapshot", {"snapshot": "1", "cursor": "{"}, KEY, 400, "BadCursor"),
    ("/api/document_deltas", {}, KEY, 400, "BadCursor"),
    ("/api/document_deltas", {"cursor": "-5"}, KEY, 400, "BadCursor"),
    ("/api/document_deltas", {"cursor": str(2**70)}, KEY, 400, "BadCursor"),
])
def test_malformed_requests_get_clear_json_errors(
    live_server_url: str, path: str, params: dict[str, str], key: str | None, status: int,
    code: str,
) -> None:
    response = get(live_server_url, path, key=key, **params)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def test_only_get_is_allowed(live_server_url: str) -> None:
    response = requests.post(f"{live_server_url}/api/document_deltas", timeout=10,
                             headers={"Authorization": f"Convex {KEY}"})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_a_listing_ends_even_while_rows_are_inserted_faster_than_it_pages(
    live_server_url: str,
) -> None:
    # Given a listing started on 100 rows
    Note.objects.bulk_create(Note(body=f"x{i}") for i in range(100))
    page = get(live_server_url, "/api/list_snapshot", tableName="testapp_note").json()
    listed = [d["_id"] for d in page["values"]]
    # When more rows than a page are inserted before each further page
    while page["hasMore"]:
        Note.objects.bulk_create(Note(body="later") for _ in range(60))
        page = get(live_server_url, "/api/list_snapshot", tableName="testapp_note",
                   snapshot=page["snapshot"], cursor=page["cursor"]).json()
        listed += [d["_id"] for d in page["values"]]
        assert len(listed) <= 100, "the listing followed rows inserted after its snapshot"
    # Then it ends with exactly the rows of its snapshot
    assert len(listed) == len(set(listed)) == 100
