"""Over the wire: real clients (npm and PyPI ``convex``) hold live subscriptions on schema-free
``notes`` queries while a writer keeps writing, the table moves into a model as documented
(``reactive_schema notes --move``, a restart with ``DOCUMENTS_MODELS``, ``--move`` again for
what was written in between), and every subscription converges to the database's final
contents: no document lost, every id kept."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from reactive.documents import routes, store
from reactive.models import Document
from tests.conftest import JS_DIR
from tests.support import servers
from tests.support.clientproc import ClientProcess
from tests.support.waiting import wait_for
from tests.testapp.models import MovedNote

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

DRIVER = Path(__file__).resolve().parents[1] / "support" / "pyclient_driver.py"


@pytest.fixture
def server(test_database_url: str, redis_url: str) -> Iterator[servers.AsgiServer]:
    """A server of this test's own, restarted into the routed settings mid-test."""
    server = servers.AsgiServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_url})
    server.start()
    yield server
    server.stop()


def final_views() -> dict[str, list[dict[str, Any]]]:
    """What the three subscribed queries must show, read from the model's table directly."""
    rows = MovedNote.objects.order_by("creation_time", "id")
    pinned = MovedNote.objects.filter(pinned=True).order_by("-creation_time", "-id")[:20]
    return {"all": [routes.as_document(r) for r in rows],
            "tagged": [routes.as_document(r) for r in rows if r.tags and "x" in r.tags],
            "pinned": [routes.as_document(r) for r in pinned]}


def notes_written() -> int:
    return Document.objects.filter(table="notes").count() + MovedNote.objects.count()


def move(batch_size: int = 5) -> str:
    out = io.StringIO()
    call_command("reactive_schema", "notes", "--move", "testapp.MovedNote",
                 "--batch-size", str(batch_size), stdout=out)
    return out.getvalue()


def test_subscriptions_converge_through_a_move_to_a_model_while_writers_write(
        server: servers.AsgiServer, node: str) -> None:
    # Given notes written schema-free, and their ids and creation times
    seeded = [store.insert("notes", {"body": f"seed{i}", "tags": ["x"] if i % 2 else ["y"],
                                     "pinned": i % 3 == 0}) for i in range(30)]
    created = dict(Document.objects.values_list("id", "creation_time"))
    # And npm clients subscribed to pinned / tagged / all notes, a writer writing, and a PyPI
    # client subscribed to all notes
    npm = ClientProcess([node, "documents_move.mjs"], cwd=JS_DIR, env={
        "SERVER_URL": server.url,
        "PAYLOAD": json.dumps({"subscribers": 2, "seeded": seeded, "pauseMs": 20})})
    py = ClientProcess([sys.executable, str(DRIVER), server.url], cwd=DRIVER.parent, env={})
    try:
        py.send({"id": 1, "op": "subscribe", "name": "testapp/documents:all_of",
                 "args": {"table": "notes"}})
        npm.event("ready", timeout=60)
        wait_for(lambda: notes_written() >= 60, timeout=60, what="the writer to write")
        # When the documents move into the model while the writer writes
        assert "Moved" in move()
        # And the servers restart routed to the model (a deploy), with the writer still going
        server.restart(DJANGO_SETTINGS_MODULE="tests.settings_documents_moved")
        moved = MovedNote.objects.count()
        wait_for(lambda: MovedNote.objects.count() >= moved + 20, timeout=60,
                 what="the writer to write to the model")
        # And the move runs again for what the old servers wrote after the first one
        move()
        wait_for(lambda: MovedNote.objects.count() >= moved + 40, timeout=60,
                 what="more writes after the move")
        npm.send('"stop"')
        writer = npm.event("stopped", timeout=60)
        # Then every document is in the model, none left schema-free, every id and creation
        # time kept, every note the writer was told was inserted there
        assert not Document.objects.filter(table="notes").exists()
        rows = dict(MovedNote.objects.values_list("id", "creation_time"))
        assert {i: rows.get(i) for i in created} == created
        assert set(writer["inserted"]) <= rows.keys()
        assert len(rows) == len(created) + len(writer["inserted"])
        # And every npm subscription converges to the database's final contents
        expected = final_views()
        npm.send({"expect": expected})
        done = npm.event("converged", timeout=60)
        # And so does the PyPI client's
        last: dict[str, Any] = {}

        def py_converged() -> bool:
            for update in py.pending():
                if update["event"] == "update":
                    last.update(update)
            return last.get("value") == expected["all"]

        wait_for(py_converged, timeout=30, what="the PyPI client's notes to converge")
    except BaseException:
        print(server.log_tail(80), npm.diagnostics(), py.diagnostics(), sep="\n---\n")
        raise
    finally:
        npm.close()
        py.close()
    # What the clients saw on the way is reported by the test's output on failure only; the
    # only errors a subscription may have seen are reads refused while the move was unfinished
    for errors in done["errors"]:
        assert set(errors) <= {"MoveInProgress"}, errors
    assert set(writer["errors"]) <= {"DocumentNotFound"}, writer["errors"]
