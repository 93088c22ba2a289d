"""Metrics on /api/metrics (admin key or staff, off unless enabled), counted from real calls
and genuine mutation conflicts; ``reactive_insights`` ranking them."""

from __future__ import annotations

import gc
import threading
from io import StringIO
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from reactive.functions.runtime import Call, runtime
from tests.observability.racing import race_transfers
from tests.testapp.models import Account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

KEY = "tests-admin-key-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_endpoint_counts_calls_errors_and_latency(live_server_url: str) -> None:
    # Given calls through the HTTP API, one of them failing
    for body in ({"path": "testapp/dataio:chatty", "args": {"word": "m"}},
                 {"path": "testapp:crash", "args": {}}):
        requests.post(f"{live_server_url}/api/query", json=body, timeout=10)
    # When scraped with the admin key
    text = requests.get(f"{live_server_url}/api/metrics", timeout=10,
                        headers={"Authorization": f"Convex {KEY}"}).text
    # Then
    assert ('reactive_function_calls_total{function="testapp/dataio:chatty",kind="query",'
            'outcome="success"}') in text
    assert ('reactive_function_calls_total{function="testapp:crash",kind="query",'
            'outcome="error"}') in text
    assert 'reactive_function_duration_seconds_bucket{function="testapp:crash"' in text
    assert "reactive_change_log_rows " in text and "reactive_scheduler_due_jobs " in text
    assert "# TYPE reactive_gc_pause_seconds histogram" in text  # timed in the server too


def test_metrics_need_the_admin_key_or_staff_and_can_be_off(live_server_url: str) -> None:
    assert requests.get(f"{live_server_url}/api/metrics", timeout=10).status_code == 401
    client = Client()
    client.force_login(User.objects.create_user("ops", is_staff=True))
    assert client.get("/api/metrics").status_code == 200
    client.force_login(User.objects.create_user("user"))
    assert client.get("/api/metrics").status_code == 401
    with override_settings(REACTIVE={"METRICS_ENABLED": False}):
        assert Client().get("/api/metrics", HTTP_AUTHORIZATION=f"Convex {KEY}").status_code == 404


def test_garbage_collection_pauses_are_exported_by_generation() -> None:
    pause = "reactive_gc_pause_seconds_count"
    Client().get("/api/metrics", HTTP_AUTHORIZATION=f"Convex {KEY}")  # anything pending
    before = {g: sample(pause, generation=g) for g in ("1", "2")}
    # When this process collects its middle generation, then all of them
    gc.collect(1)
    gc.collect()
    # Then the scrape counts one pause of each (no young collection is timed)
    response = Client().get("/api/metrics", HTTP_AUTHORIZATION=f"Convex {KEY}")
    assert response.status_code == 200
    assert sample(pause, generation="1") >= before["1"] + 1
    assert sample(pause, generation="2") >= before["2"] + 1
    assert sample(pause, generation="0") == 0
    assert 0 < sample("reactive_gc_pause_seconds_sum", generation="2") < 60
    assert 'reactive_gc_pause_seconds_bucket{generation="2",le="0.0001"}' in (
        response.content.decode())


def test_mutation_conflicts_are_counted_as_retries_by_sqlstate() -> None:
    # Given threads moving money both ways between two accounts at once (SERIALIZABLE)
    before = sample("reactive_mutation_retries_total", function="testapp:transfer",
                    sqlstate="40001")
    race_transfers(15)
    # Then the lost races were counted, and the money is all there
    after = sample("reactive_mutation_retries_total", function="testapp:transfer",
                   sqlstate="40001")
    assert after > before
    assert sum(Account.objects.values_list("balance", flat=True)) == 2000


def test_reactive_insights_ranks_slow_and_conflicting_functions(live_server_url: str) -> None:
    # Given calls while the command watches (and totals since start)
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            requests.post(f"{live_server_url}/api/query", timeout=10,
                          json={"path": "testapp/dataio:chatty", "args": {"word": "i"}})

    thread = threading.Thread(target=traffic)
    thread.start()
    out = StringIO()
    try:
        call_command("reactive_insights", "--url", live_server_url, "--window", "1",
                     stdout=out)
    finally:
        done.set()
        thread.join(timeout=30)
    # Then the watched function is listed with its calls
    text = out.getvalue()
    assert "Slowest functions (the last 1 s)" in text
    row = next(line for line in text.splitlines() if "testapp/dataio:chatty" in line)
    assert float(row.split()[-2]) >= 1
    with pytest.raises(CommandError, match="Could not read"):
        call_command("reactive_insights", "--url", "http://127.0.0.1:9", "--window", "0")


def test_system_checks_name_a_bad_export_directory_and_metrics_without_a_key(
    tmp_path: Any,
) -> None:
    from django.core import checks

    missing = str(tmp_path / "nope")
    with override_settings(REACTIVE={"EXPORT_DIRECTORY": missing, "METRICS_ENABLED": True}):
        ids = {m.id for m in checks.run_checks() if m.id and m.id.startswith("reactive.")}
    assert {"reactive.E040", "reactive.W040"} <= ids
    with override_settings(REACTIVE={"EXPORT_DIRECTORY": str(tmp_path), "ADMIN_KEY": KEY,
                                     "METRICS_ENABLED": True}):
        ids = {m.id for m in checks.run_checks() if m.id and m.id.startswith("reactive.")}
    assert not {"reactive.E040", "reactive.W040"} & ids


def test_rows_read_and_written_are_counted_per_function() -> None:
    # Given three notes, two of them written by one mutation
    assert runtime.call(Call("testapp:add_note", {"body": "one"})).error is None
    read_before = sample("reactive_function_rows_read_total",
                         function="testapp:list_notes", kind="query")
    written_before = sample("reactive_function_rows_written_total",
                            function="testapp:add_two_notes", kind="mutation")
    assert runtime.call(Call("testapp:add_two_notes", {"body": "two"})).error is None
    # When a query reads them back through the client-facing path
    outcome = runtime.call(Call("testapp:list_notes", {}))
    # Then the query's reads and the mutation's writes are counted, row for row
    assert outcome.error is None and len(outcome.value) == 3
    assert sample("reactive_function_rows_read_total", function="testapp:list_notes",
                  kind="query") - read_before == 3
    assert sample("reactive_function_rows_written_total", function="testapp:add_two_notes",
                  kind="mutation") - written_before == 2
