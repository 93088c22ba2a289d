"""The PyPI ``convex`` client (``convex.ConvexClient``, the Rust sync client over
``/api/sync``) against a live server: query, mutation, subscriptions, errors, Int64 values.

The client runs in a child process (tests/pyclient_driver.py): its blocking calls hold the
GIL, so a call the server never answers would freeze a test thread and pytest's timeout with
it; a child process can always be killed at the deadline.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.settings import REACTIVE
from tests.support import servers
from tests.support.clientproc import ClientProcess
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

DRIVER = Path(__file__).resolve().parents[1] / "support" / "pyclient_driver.py"


class PyClient:
    """One ``convex.ConvexClient`` in a child process; each call waits with a deadline."""

    def __init__(self, url: str) -> None:
        self.process = ClientProcess([sys.executable, str(DRIVER), url], cwd=DRIVER.parent,
                                     env={})
        self._ids = itertools.count()

    def _command(self, op: str, **fields: Any) -> int:
        command_id = next(self._ids)
        self.process.send({"id": command_id, "op": op, **fields})
        return command_id

    def call(self, op: str, name: str, args: Any = None, timeout: float = 15) -> dict[str, Any]:
        """Run ``client.<op>(name, args)``: ``{"ok": True, "value", "pytype"}`` or
        ``{"ok": False, "type", "message", "data"}``."""
        command_id = self._command(op, name=name, args=args)
        return self.process.wait(lambda m: m["event"] == "result" and m["id"] == command_id,
                                 f"the result of {op} {name}", timeout)

    def value(self, op: str, name: str, args: Any = None) -> Any:
        result = self.call(op, name, args)
        assert result["ok"], result
        return result["value"]

    def subscribe(self, name: str, args: Any = None) -> int:
        command_id = self._command("subscribe", name=name, args=args)
        self.process.wait(lambda m: m["event"] == "subscribed" and m["id"] == command_id,
                          "subscribed", 10)
        return command_id

    def update(self, subscription: int, until: Callable[[Any], bool] = lambda v: True,
               timeout: float = 15) -> Any:
        """The first value (arrived or arriving) of ``subscription`` for which ``until``
        holds; earlier ones are dropped."""
        def match(m: dict[str, Any]) -> bool:
            return m["event"] == "update" and m["id"] == subscription and (
                not m["ok"] or until(m["value"]))

        update = self.process.wait(match, f"an update of subscription {subscription}", timeout)
        assert update["ok"], update
        return update["value"]

    def admin(self, key: str) -> None:
        command_id = self._command("admin", key=key)
        self.process.wait(lambda m: m["event"] == "result" and m["id"] == command_id, "admin")

    def close(self) -> None:
        self.process.close()


@pytest.fixture
def own_server(test_database_url: str, redis_url: str) -> Iterator[servers.AsgiServer]:
    """A server of this test's own, to kill and restart on the same port."""
    with servers.serving(test_database_url, redis_url) as server:
        yield server


@pytest.fixture
def py_clients(live_server_url: str) -> Iterator[Callable[[], PyClient]]:
    started: list[PyClient] = []

    def start() -> PyClient:
        started.append(PyClient(live_server_url))
        return started[-1]

    yield start
    for client in started:
        client.close()


def bodies(notes: list[dict[str, Any]]) -> list[str]:
    return [n["body"] for n in notes]


def test_python_mutation_query_and_subscription(py_clients: Callable[[], PyClient]) -> None:
    client = py_clients()
    # A mutation from a client with no subscriptions returns (its covering Transition is empty)
    first = client.call("mutation", "testapp:add_note", {"body": "py first"})
    assert first["ok"] and first["pytype"] == "str", first
    assert Note.objects.get(body="py first").pk == int(first["value"])
    # A one-shot query sees it, with the system fields
    [note] = client.value("query", "testapp:list_notes")
    assert note["_id"] == first["value"] and note["body"] == "py first"
    assert isinstance(note["_creationTime"], float)
    # A subscription follows the client's own mutations
    subscription = client.subscribe("testapp:list_notes")
    assert bodies(client.update(subscription)) == ["py first"]
    second = client.value("mutation", "testapp:add_note", {"body": "py second"})
    notes = client.update(subscription, lambda v: len(v) == 2)
    assert [n["_id"] for n in notes] == [first["value"], second]


def test_python_subscription_sees_writes_from_other_connections(
    py_clients: Callable[[], PyClient], live_server_url: str
) -> None:
    watcher, writer = py_clients(), py_clients()
    subscription = watcher.subscribe("testapp/clients:list_bodies", {"prefix": "w:"})
    assert watcher.update(subscription) == []
    # Through another Python client's websocket
    writer.value("mutation", "testapp:add_note", {"body": "w:python"})
    assert watcher.update(subscription, lambda v: len(v) == 1) == ["w:python"]
    # Through the HTTP API
    response = requests.post(f"{live_server_url}/api/mutation", timeout=10, json={
        "path": "testapp:add_note", "args": {"body": "w:http"}, "format": "json"})
    assert response.json()["status"] == "success", response.text
    assert watcher.update(subscription, lambda v: len(v) == 2) == ["w:python", "w:http"]
    # Through the ORM in this process
    Note.objects.create(body="w:orm")
    assert watcher.update(subscription, lambda v: len(v) == 3)[-1] == "w:orm"


def test_python_errors_and_admin_auth(py_clients: Callable[[], PyClient]) -> None:
    client = py_clients()
    # A failed mutation returns promptly (it needs a Transition after its response, even on a
    # session with no subscriptions) as a ConvexError with data
    failed = client.call("mutation", "testapp:add_note", {"body": "  "}, timeout=10)
    assert failed["type"] == "ConvexError" and failed["data"] == {"code": "EMPTY",
                                                                  "field": "body"}
    action = client.call("action", "testapp:fail_action", {"code": "NOPE"})
    assert action["type"] == "ConvexError" and action["data"] == {"code": "NOPE"}
    query = client.call("query", "testapp/clients:paginate_notes",
                        {"paginationOpts": {"numItems": 2, "cursor": "bogus"}})
    assert query["type"] == "ConvexError" and query["data"]["paginationError"] == "InvalidCursor"
    # Internal functions are refused as unknown, with a plain error
    for op, name in (("query", "testapp:secret"), ("mutation", "testapp:internal_add")):
        refused = client.call(op, name, {"body": "x"} if op == "mutation" else None)
        assert refused["type"] == "Exception", refused
        assert "Could not find public function" in refused["message"]
    assert not Note.objects.exists()
    # ... and allowed with the admin key
    client.admin(REACTIVE["ADMIN_KEY"])
    assert client.value("query", "testapp:secret") == "internal"
    # The session is still usable after all of it
    assert client.call("mutation", "testapp:add_note", {"body": "fine"})["ok"]


def test_python_int64_and_bytes_round_trip(py_clients: Callable[[], PyClient]) -> None:
    client = py_clients()
    big = {"$int64": str(2**60)}
    doubled = client.call("query", "testapp/clients:int64_double", {"n": {"$int64": "21"}})
    assert doubled["value"] == {"$int64": "42"} and doubled["pytype"] == "ConvexInt64"
    echoed = client.call("query", "testapp:echo", {"value": {"n": big, "raw": {"$bytes": "0102"},
                                                             "x": 1.5}})
    assert echoed["value"] == {"n": big, "raw": {"$bytes": "0102"}, "x": 1.5}
    assert client.call("query", "testapp:big_int")["pytype"] == "ConvexInt64"
    # A Python int is a Float64 on the wire
    plain = client.call("query", "testapp:echo", {"value": 7})
    assert plain["value"] == 7.0 and plain["pytype"] == "float"


@pytest.mark.timeout(90)
def test_python_client_resubscribes_after_the_server_is_killed(
    own_server: servers.AsgiServer,
) -> None:
    client = PyClient(own_server.url)
    try:
        subscription = client.subscribe("testapp/clients:list_bodies", {"prefix": "k:"})
        assert client.update(subscription) == []
        client.value("mutation", "testapp:add_note", {"body": "k:before"})
        assert client.update(subscription, lambda v: v == ["k:before"])
        # When the server process dies and a new one starts on its port
        own_server.kill()
        own_server.start()
        # Then the client reconnects, re-subscribes, and follows writes again
        Note.objects.create(body="k:after")
        assert client.update(subscription, lambda v: len(v) == 2, timeout=40) == [
            "k:before", "k:after"]
        client.value("mutation", "testapp:add_note", {"body": "k:again"})
        assert client.update(subscription, lambda v: len(v) == 3)[-1] == "k:again"
    finally:
        client.close()
