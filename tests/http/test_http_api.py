"""The HTTP API on a live ASGI server, driven by the official clients and by raw requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexHttpClient

from reactive import values
from tests.conftest import NodeClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ADMIN_KEY = "tests-admin-key-0123456789"


def post(url: str, path: str, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return requests.post(f"{url}{path}", data=data, headers=headers, timeout=10, **kwargs)


# -- the npm client ----------------------------------------------------------------------------


def test_npm_client_runs_queries_mutations_and_actions(
    live_server_url: str, node_client: NodeClient
) -> None:
    # When
    outcomes = node_client.run("http_client.mjs", live_server_url, {"calls": [
        {"kind": "mutation", "path": "testapp:add_note", "args": {"body": "from node"}},
        {"kind": "query", "path": "testapp:list_notes", "args": {}},
        {"kind": "action", "path": "testapp:summarize", "args": {"prefix": "js "}},
        {"kind": "query", "path": "testapp/rooms:hello", "args": {"name": "npm"}},
    ]})
    # Then
    assert all(o["ok"] for o in outcomes), outcomes
    new_id = outcomes[0]["value"]
    assert outcomes[1]["value"][0]["_id"] == new_id
    assert outcomes[1]["value"][0]["body"] == "from node"
    assert outcomes[2]["value"]["count"] == 1
    assert outcomes[3]["value"] == "hello npm"
    assert Note.objects.count() == 2


def test_npm_client_sees_convex_error_data_and_refused_internal_functions(
    live_server_url: str, node_client: NodeClient
) -> None:
    outcomes = node_client.run("http_client.mjs", live_server_url, {"calls": [
        {"kind": "mutation", "path": "testapp:add_note", "args": {"body": "  "}},
        {"kind": "query", "path": "testapp:secret", "args": {}},
        {"kind": "action", "path": "testapp:fail_action", "args": {"code": "NOPE"}},
        {"kind": "query", "path": "testapp:add_note", "args": {"body": "x"}},
    ]})
    empty, internal, failed_action, wrong_kind = outcomes
    assert empty == {"ok": False, "convexError": True, "data": {"code": "EMPTY", "field": "body"},
                     "message": empty["message"]}
    assert not internal["ok"] and "Could not find public function" in internal["message"]
    assert failed_action["convexError"] and failed_action["data"] == {"code": "NOPE"}
    assert not wrong_kind["ok"] and "is a mutation, not a query" in wrong_kind["message"]
    assert not Note.objects.exists()


def test_npm_client_round_trips_bigint_bytes_and_special_floats(
    live_server_url: str, node_client: NodeClient
) -> None:
    value = {
        "big": {"$integer": values.encode(values.Int64(-(2**62)))["$integer"]},
        "bytes": {"$bytes": "AAEC/w=="},
        "nan": {"$float": "AAAAAAAA+H8="},
        "nested": [1.5, "s", None, True],
    }
    outcomes = node_client.run("http_client.mjs", live_server_url, {"calls": [
        {"kind": "query", "path": "testapp:echo", "args": {"value": value}},
        {"kind": "query", "path": "testapp:big_int", "args": {}},
        {"kind": "query", "path": "testapp:special_floats", "args": {}},
        {"kind": "query", "path": "testapp:internal_add", "args": {"body": "x"}},
    ]})
    echoed, big, floats, _ = outcomes
    assert echoed["value"] == value
    assert big["jsType"] == "bigint"
    assert values.decode(big["value"]) == 2**60
    assert values.decode(floats["value"])[1:] == [float("inf"), float("-inf"), -0.0, 1.5]


def test_npm_admin_key_reaches_internal_functions(
    live_server_url: str, node_client: NodeClient
) -> None:
    outcomes = node_client.run("http_client.mjs", live_server_url, {
        "admin": ADMIN_KEY,
        "calls": [{"kind": "query", "path": "testapp:secret", "args": {}}],
    })
    assert outcomes == [{"ok": True, "value": "internal", "jsType": "string"}]


# -- the PyPI client ---------------------------------------------------------------------------


def test_python_http_client_runs_functions_and_raises_convex_error(live_server_url: str) -> None:
    client = ConvexHttpClient(live_server_url)
    new_id = client.mutation("testapp:add_note", {"body": "from python"})
    assert client.query("testapp:list_notes")[0]["_id"] == new_id
    assert client.action("testapp:sync_summarize") == 1
    assert client.query("testapp:echo", {"value": ConvexInt64(2**40)}) == 2**40
    assert client.query("testapp:echo", {"value": b"\x00\x01"}) == b"\x00\x01"
    with pytest.raises(ConvexError) as info:
        client.mutation("testapp:add_note", {"body": ""})
    assert info.value.data == {"code": "EMPTY", "field": "body"}
    with pytest.raises(Exception, match="404 FunctionNotFound"):
        client.query("testapp:secret")
    client.set_admin_auth(ADMIN_KEY)
    assert client.query("testapp:secret") == "internal"


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("/api/query", b"{not json", {}, 400, "BadJson"),
        ("/api/query", b'{"path": "testapp:echo", "args": [{"value": NaN}]}', {}, 400, "BadJson"),
        ("/api/query", b"[" * 100_000, {}, 400, "BadJson"),
        ("/api/query", {"path": "testapp:echo"}, {"Content-Type": "text/plain"}, 415,
         "UnsupportedMediaType"),
        ("/api/query", [1, 2], {}, 400, "BadRequest"),
        ("/api/query", {"args": {}}, {}, 400, "BadRequest"),
        ("/api/query", {"path": 5}, {}, 400, "BadRequest"),
        ("/api/query", {"path": "testapp:echo", "args": [{}, {}]}, {}, 400, "BadRequest"),
        ("/api/query", {"path": "testapp:echo", "args": "x"}, {}, 400, "BadRequest"),
        ("/api/query", {"path": "testapp:echo", "args": {"value": {"$integer": "AA=="}}}, {},
         400, "BadConvexValue"),
        ("/api/query", {"path": "testapp:echo", "format": "xml"}, {}, 400, "BadFormat"),
        ("/api/query", {"path": "testapp:nope"}, {}, 404, "FunctionNotFound"),
        ("/api/query", {"path": "testapp:secret"}, {}, 404, "FunctionNotFound"),
        ("/api/query", {"path": "x" * 5000}, {}, 404, "FunctionNotFound"),
        ("/api/mutation", {"path": "testapp:add_note", "args": {}}, {}, 400,
         "ArgumentValidationError"),
        ("/api/mutation", {"path": "testapp:add_note", "args": {"body": 1, "x": 2}}, {}, 400,
         "ArgumentValidationError"),
        ("/api/query", {"path": "testapp:echo"}, {"Authorization": "Basic abc"}, 401,
         "Unauthenticated"),
        ("/api/query", {"path": "testapp:echo"}, {"Authorization": "Convex wrong-key"}, 401,
         "Unauthenticated"),
        ("/api/query", {"path": "testapp:echo"}, {"Authorization": "Bearer a.b.c"}, 401,
         "Unauthenticated"),
        ("/api/run/list", {"args": {}}, {}, 400, "BadRequest"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    live_server_url: str, path: str, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    response = post(live_server_url, path, body, headers=headers)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == code
    assert len(payload["message"]) > 10
    # The server keeps serving.
    ok = post(live_server_url, "/api/query", {"path": "testapp:echo", "args": {"value": 1}})
    assert ok.json() == {"status": "success", "value": 1, "logLines": []}


def test_argument_error_names_the_field(live_server_url: str) -> None:
    response = post(live_server_url, "/api/mutation",
                    {"path": "testapp:add_note", "args": {"body": 5}})
    assert response.json()["message"] == (
        "Invalid arguments for 'testapp:add_note': body: Input should be a valid string (got 5)."
    )


def test_oversized_body_is_refused(live_server_url: str) -> None:
    big = json.dumps({"path": "testapp:echo", "args": {"value": "x" * (9 * 1024 * 1024)}})
    response = post(live_server_url, "/api/query", big)
    assert response.status_code == 413
    assert "HTTP_MAX_BODY_BYTES" in response.json()["message"]


def test_get_is_not_allowed(live_server_url: str) -> None:
    response = requests.get(f"{live_server_url}/api/query", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.json()["code"] == "MethodNotAllowed"


def test_function_failures_are_200_with_status_error(live_server_url: str) -> None:
    crash = post(live_server_url, "/api/query", {"path": "testapp:crash"}).json()
    assert crash["status"] == "error"
    assert "Server Error" in crash["errorMessage"]
    assert "errorData" not in crash
    bad_key = post(live_server_url, "/api/query", {"path": "testapp:bad_key"}).json()
    assert bad_key["status"] == "error" and "café" in bad_key["errorMessage"]


def test_run_endpoint_uses_clean_json_by_default(live_server_url: str) -> None:
    response = post(live_server_url, "/api/run/testapp/big_int", {"args": {}})
    assert response.json()["value"] == str(2**60)
    nested = post(live_server_url, "/api/run/testapp/rooms/hello", {"args": {"name": "run"}})
    assert nested.json()["value"] == "hello run"


def test_query_ts_and_query_at_ts(live_server_url: str) -> None:
    ts = post(live_server_url, "/api/query_ts", b"").json()["ts"]
    assert values.decode_ts(ts) > 0
    at = post(live_server_url, "/api/query_at_ts",
              {"path": "testapp/rooms:hello", "args": {}, "ts": ts})
    assert at.json()["value"] == "hello world"
    future = values.encode_ts(2**62)
    refused = post(live_server_url, "/api/query_at_ts",
                   {"path": "testapp/rooms:hello", "args": {}, "ts": future})
    assert refused.status_code == 400


# -- CORS and CSRF -----------------------------------------------------------------------------


def test_cors_preflight_allows_configured_origin_only(live_server_url: str) -> None:
    headers = {"Origin": "http://allowed.example", "Access-Control-Request-Method": "POST"}
    ok = requests.options(f"{live_server_url}/api/query", headers=headers, timeout=10)
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert "Convex-Client" in ok.headers["Access-Control-Allow-Headers"]
    other = requests.options(f"{live_server_url}/api/query",
                             headers={**headers, "Origin": "http://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers


def test_session_cookie_requests_need_convex_client_header(live_server_url: str) -> None:
    from django.contrib.auth.models import User

    # Given a logged-in browser session
    User.objects.create_user("ada", password="pw-for-tests", is_staff=True)
    session = requests.Session()
    login_page = session.get(f"{live_server_url}/admin/login/", timeout=10)
    assert login_page.status_code == 200
    session.post(f"{live_server_url}/admin/login/", timeout=10, data={
        "username": "ada", "password": "pw-for-tests",
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    }, headers={"Referer": f"{live_server_url}/admin/login/"})
    assert "sessionid" in session.cookies
    body = json.dumps({"path": "testapp:whoami", "args": {}})
    # When the cookie comes without the Convex-Client header or a CSRF token: refused
    forged = session.post(f"{live_server_url}/api/query", data=body, timeout=10,
                          headers={"Content-Type": "application/json"})
    assert forged.status_code == 403
    assert forged.json()["code"] == "CsrfFailed"
    # With the header the official clients send, the session user is the caller
    ok = session.post(f"{live_server_url}/api/query", data=body, timeout=10,
                      headers={"Content-Type": "application/json", "Convex-Client": "npm-1.48.0"})
    assert ok.json()["value"]["user"] == "ada"
