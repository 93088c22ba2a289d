"""No data to an identity that is no longer valid, with the real clients: a cookie session
logged out, or whose user is deactivated, turns anonymous on the open websocket within
WEBSOCKET_SESSION_RECHECK_SECONDS (npm client, cookie on the handshake); an accepted JWT is
ended at its expiry by the server, with no client message (npm and PyPI clients)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.models import User
from django.test import Client

from reactive.conf import reactive_settings
from tests.auth.test_sync_auth import KEY
from tests.conftest import JS_DIR
from tests.live.test_python_sync import DRIVER
from tests.support.clientproc import ClientProcess
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ISSUER = "https://issuer.tests.invalid"


def short_token(subject: str, lasts: float) -> tuple[str, float]:
    """A token accepted now that ends ``lasts`` seconds from now (its exp + AUTH_LEEWAY)."""
    private = serialization.load_pem_private_key(KEY.read_bytes(), None)
    ends = time.time() + lasts
    exp = ends - reactive_settings().AUTH_LEEWAY
    token = jwt.encode({"iss": ISSUER, "sub": subject, "iat": int(time.time()) - 60, "exp": exp,
                        "aud": "django-reactivity-tests"},
                       private, algorithm="RS256", headers={"kid": "tests-rs256"})  # type: ignore[arg-type]
    return token, ends


def logged_in(username: str) -> tuple[User, Client, str]:
    user = User.objects.create_user(username, password="not-used-here")
    browser = Client()
    browser.force_login(user)
    return user, browser, f"sessionid={browser.cookies['sessionid'].value}"


def npm_client(node: str, url: str, **payload: Any) -> ClientProcess:
    return ClientProcess([node, "identity.mjs"], cwd=JS_DIR,
                         env={"SERVER_URL": url, "PAYLOAD": json.dumps(payload)})


def who(client: ClientProcess, user: str | None, timeout: float = 20) -> dict[str, Any]:
    return client.wait(lambda m: m["event"] == "who" and m["who"]["user"] == user,
                       f"whoami user={user}", timeout)


@pytest.mark.parametrize("ending", ["logout", "deactivate"])
def test_a_cookie_session_that_ends_stops_its_websocket_identity(
    live_server_url: str, node: str, ending: str
) -> None:
    user, browser, cookie = logged_in(f"cookie-{ending}")
    client = npm_client(node, live_server_url, cookie=cookie, prefix="cookie:")
    try:
        # Given an npm client whose websocket carries a logged-in session cookie
        who(client, user.username)
        # When the session is logged out (Django's logout flushes it) or the user deactivated
        started = time.time()
        if ending == "logout":
            browser.logout()
        else:
            User.objects.filter(pk=user.pk).update(is_active=False)
        # Then within the documented bound the socket's queries run as anonymous
        seen = who(client, None)
        bound = reactive_settings().WEBSOCKET_SESSION_RECHECK_SECONDS + 3
        assert seen["t"] - started < bound, seen["t"] - started
        # ... and nothing after that is computed for the user
        Note.objects.create(body="cookie:after")
        client.wait(lambda m: m["event"] == "bodies" and m["n"] == 1, "the later write")
        late = [m for m in client.pending() if m["event"] == "who"]
        assert all(m["who"]["user"] is None for m in late), late
    finally:
        client.send("quit")
        client.close()


def test_an_npm_clients_token_is_ended_at_its_expiry(live_server_url: str, node: str) -> None:
    # Given an npm client authenticated with a token that ends 3 s from now, which its
    # fetchToken keeps returning (so no refresh can save it)
    token, ends = short_token("npm-brief", 3)
    client = npm_client(node, live_server_url, token=token, prefix="npm-brief:")
    try:
        seen = client.wait(lambda m: m["event"] == "who" and m["who"]["tokenIdentifier"],
                           "the token identity")
        assert seen["t"] < ends
        # When writes keep coming and the client itself sends nothing
        for i in range(40):
            Note.objects.create(body=f"npm-brief:{i}")
            if time.time() > ends + 2:
                break
            time.sleep(0.1)
        # Then the client is told (its onChange(false)) and falls back to anonymous
        auth = client.wait(lambda m: m["event"] == "auth" and m["ok"] is False, "onChange(false)")
        assert auth["t"] >= ends - 0.5
        who(client, None)
        tokened = [m for m in client.pending()
                   if m["event"] == "who" and m["who"]["tokenIdentifier"]]
        assert all(m["t"] < ends + 0.5 for m in tokened), tokened
    finally:
        client.send("quit")
        client.close()


def test_a_pypi_clients_token_gets_nothing_after_its_expiry(live_server_url: str) -> None:
    token, ends = short_token("py-brief", 3)
    process = ClientProcess([sys.executable, str(DRIVER), live_server_url], cwd=DRIVER.parent,
                            env={})
    try:
        # Given a PyPI client authenticated with a token that ends 3 s from now
        process.send({"id": 0, "op": "auth", "token": token})
        process.wait(lambda m: m["event"] == "result" and m["id"] == 0, "set_auth")
        process.send({"id": 1, "op": "subscribe", "name": "testapp:whoami", "args": {}})
        process.wait(lambda m: m["event"] == "update" and m["id"] == 1 and m.get("ok")
                     and m["value"]["tokenIdentifier"] == f"{ISSUER}|py-brief",
                     "the token identity")
        process.send({"id": 2, "op": "subscribe", "name": "testapp/clients:list_bodies",
                      "args": {"prefix": "py-brief:"}})
        # When writes keep coming past the expiry
        arrivals: list[float] = []
        deadline = ends + 4
        i = 0
        while time.time() < deadline:
            Note.objects.create(body=f"py-brief:{i}")
            i += 1
            time.sleep(0.2)
            arrivals += [time.time() for m in process.pending()
                         if m["event"] == "update" and m["id"] == 2 and _take(process, m)]
        # Then they reached it before the token's end, and none after it (its Rust core keeps
        # re-sending the expired token and is refused each time)
        assert any(t < ends for t in arrivals), arrivals
        assert all(t < ends + 1.0 for t in arrivals), (ends, arrivals)
    finally:
        process.close()


def _take(process: ClientProcess, message: dict[str, Any]) -> bool:
    """Remove ``message`` from the pending events; True."""
    process.wait(lambda m: m is message, "a pending event", 1)
    return True
