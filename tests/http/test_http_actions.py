"""HTTP actions over real HTTP: a signed webhook calling a mutation, sync and async handlers,
auth from a Bearer JWT or the session cookie, streaming, CORS, 404/405 and 500s."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from reactive import http_action
from reactive.exceptions import DefinitionError
from reactive.functions import logs
from reactive.functions.http_actions import HttpRoutes
from tests.auth.test_sync_auth import token
from tests.testapp.functions.http import WEBHOOK_SECRET
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = hmac.new(WEBHOOK_SECRET, raw, hashlib.sha256).hexdigest()
    return raw, {"X-Signature": signature, "Content-Type": "application/json"}


def test_signed_webhook_runs_a_mutation(storage_server_url: str) -> None:
    raw, headers = signed({"order": "A-17"})
    response = requests.post(f"{storage_server_url}/http/hooks/payment", data=raw,
                             headers=headers, timeout=10)
    assert response.status_code == 204
    assert Note.objects.filter(body="paid A-17").count() == 1
    # A wrong signature is refused by the handler and writes nothing
    headers["X-Signature"] = "0" * 64
    refused = requests.post(f"{storage_server_url}/http/hooks/payment", data=raw,
                            headers=headers, timeout=10)
    assert refused.status_code == 401
    assert Note.objects.count() == 1


def test_sync_handler_sees_bearer_jwt_and_runs_queries(storage_server_url: str) -> None:
    Note.objects.create(body="one")
    anonymous = requests.get(f"{storage_server_url}/http/whoami?count=1", timeout=10).json()
    assert anonymous == {"method": "GET", "subject": None, "issuer": None, "notes": 1}
    authed = requests.get(f"{storage_server_url}/http/whoami",
                          headers={"Authorization": f"Bearer {token('hook-user')}"}, timeout=10)
    assert authed.json()["subject"] == "hook-user"
    bad = requests.get(f"{storage_server_url}/http/whoami",
                       headers={"Authorization": "Bearer not-a-jwt"}, timeout=10)
    assert bad.status_code == 401


def test_session_cookie_identifies_the_user_and_unsafe_methods_need_csrf(
    storage_server_url: str
) -> None:
    user = get_user_model().objects.create_user("ada", password="pw")
    browser = Client()
    browser.force_login(user)
    cookies = {"sessionid": browser.cookies["sessionid"].value}
    seen = requests.get(f"{storage_server_url}/http/whoami", cookies=cookies, timeout=10).json()
    assert (seen["issuer"], seen["subject"]) == ("django", str(user.pk))
    forged = requests.post(f"{storage_server_url}/http/whoami", cookies=cookies, timeout=10)
    assert forged.status_code == 403
    assert forged.json()["code"] == "CsrfFailed"


def test_async_handler_streams_its_response(storage_server_url: str) -> None:
    started = time.monotonic()
    with requests.get(f"{storage_server_url}/http/stream", stream=True, timeout=10) as response:
        arrivals = []
        for line in response.iter_lines():
            arrivals.append((line, time.monotonic() - started))
    assert [line for line, _ in arrivals] == [b"first", b"second"]
    # The first chunk arrived before the handler produced the second (0.5 s later)
    assert arrivals[1][1] - arrivals[0][1] > 0.3


def test_unknown_path_is_404_and_wrong_method_is_405(storage_server_url: str) -> None:
    missing = requests.get(f"{storage_server_url}/http/nowhere", timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (404, "NotFound")
    wrong = requests.delete(f"{storage_server_url}/http/whoami", timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_cors_uses_the_api_settings_per_route(storage_server_url: str) -> None:
    preflight = {"Origin": "http://allowed.example", "Access-Control-Request-Method": "POST"}
    ok = requests.options(f"{storage_server_url}/http/whoami", headers=preflight, timeout=10)
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert ok.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS, POST"
    other = requests.options(f"{storage_server_url}/http/whoami", timeout=10,
                             headers={**preflight, "Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    simple = requests.get(f"{storage_server_url}/http/whoami", timeout=10,
                          headers={"Origin": "http://allowed.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    # The webhook route turned CORS off
    hook = requests.options(f"{storage_server_url}/http/hooks/payment", headers=preflight,
                            timeout=10)
    assert "Access-Control-Allow-Origin" not in hook.headers


def test_crash_is_500_without_details_unless_exposed(storage_server_url: str) -> None:
    # The storage server runs with EXPOSE_ERROR_DETAILS False (as production with DEBUG off)
    for path in ("boom", "not-a-response"):
        response = requests.get(f"{storage_server_url}/http/{path}", timeout=10)
        assert response.status_code == 500
        assert response.json()["code"] == "InternalServerError"
        assert "secret" not in response.text and "Uncaught" not in response.text


async def test_crash_details_are_shown_when_exposed() -> None:
    # tests.settings exposes details (as DEBUG would)
    response = await AsyncClient().get("/http/boom")
    assert response.status_code == 500
    assert "Uncaught RuntimeError: a secret detail" in response.json()["message"]


def test_prefix_route_with_storage(storage_server_url: str) -> None:
    stored = requests.post(f"{storage_server_url}/http/files/", data=b"via http",
                           headers={"Content-Type": "text/plain"}, timeout=10)
    storage_id = stored.json()["storageId"]
    found = requests.get(f"{storage_server_url}/http/files/{storage_id}", timeout=10).json()
    served = requests.get(found["url"], timeout=10)
    assert served.content == b"via http"


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("no-slash",), {}, "must start with '/'"),
    (("/a//b",), {}, "must start with '/'"),
    (("/x",), {"methods": ["FETCH"]}, "methods must be some of"),
    (("/x",), {"methods": "POST"}, "methods must be a list"),
    (("/x",), {"methods": []}, "methods must be some of"),
])
def test_bad_declarations_fail_when_applied(args: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        http_action(*args, **kwargs)(lambda ctx, request: None)


def test_bare_decorator_and_clashing_routes_are_refused() -> None:
    with pytest.raises(DefinitionError, match="needs a path"):
        http_action(lambda ctx, request: None)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="take \\(ctx, request\\)"):
        http_action("/x")(lambda ctx: None)
    table = HttpRoutes()
    table.add(http_action("/x", methods=["GET", "POST"])(lambda ctx, request: None))
    with pytest.raises(DefinitionError, match="Two HTTP actions serve POST /x"):
        table.add(http_action("/x", methods=["POST"])(lambda ctx, request: None))


def test_http_actions_are_reported_to_the_log_stream_and_metrics() -> None:
    # Given a listener, as the log stream and the metrics register one
    seen: list[logs.CallRecord] = []
    logs.add_listener(seen.append)
    try:
        # When a handler that prints runs, and one that crashes
        assert Client().get("/http/whoami").status_code == 200
        assert Client().get("/http/boom").status_code == 500
    finally:
        logs.remove_listener(seen.append)
    # Then each is one call of kind httpAction, with its output and its outcome
    ok, crashed = seen
    assert (ok.function, ok.kind, ok.ok) == ("testapp/http:whoami", "httpAction", True)
    assert ok.log_lines == ("[LOG] whoami GET",)
    assert (crashed.kind, crashed.ok) == ("httpAction", False)
    assert crashed.error == "RuntimeError: a secret detail"
