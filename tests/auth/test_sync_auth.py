"""Authenticate over the sync protocol with a real JWT: identity versions and re-runs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from reactive.functions.transaction import in_thread
from tests.support.syncclient import SyncClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

KEY = Path(__file__).resolve().parents[1] / "keys" / "rs256-test.pem"


def token(subject: str) -> str:
    """A token for the test issuer configured in tests/settings.py."""
    private = serialization.load_pem_private_key(KEY.read_bytes(), None)
    now = int(time.time())
    return jwt.encode(
        {"iss": "https://issuer.tests.invalid", "sub": subject, "iat": now, "exp": now + 60,
         "aud": "django-reactivity-tests"},
        private, algorithm="RS256", headers={"kid": "tests-rs256"},  # type: ignore[arg-type]
    )


async def test_authenticate_reruns_queries_under_the_new_identity(live_server_url: str) -> None:
    async with SyncClient(live_server_url) as client:
        # Given an anonymous subscription
        query = await client.subscribe("testapp:whoami")
        assert (await client.result(query))["tokenIdentifier"] is None
        # When the client authenticates (as npm's setAuth does)
        await client.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                           "value": token("sync-user")})
        # Then a Transition raises the identity version and carries the re-run result
        who = await client.result(
            query, lambda v: v["tokenIdentifier"] == "https://issuer.tests.invalid|sync-user")
        assert client.version["identity"] == 1
        assert who["user"] is None  # a JWT caller has no Django user
        # And clearing auth goes back to anonymous at the next identity version
        await client.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "None"})
        await client.result(query, lambda v: v["tokenIdentifier"] is None)
        assert client.version["identity"] == 2


async def test_a_bad_token_gets_auth_error_and_a_close(live_server_url: str) -> None:
    async with SyncClient(live_server_url) as client:
        tampered = token("x")[:-4] + "AAAA"
        await client.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                           "value": tampered})
        error = await client.wait_for(
            lambda: next((m for m in client.other if m["type"] == "AuthError"), None))
        assert error["authUpdateAttempted"] is True
        assert error["baseVersion"] == 0
        assert tampered not in error["error"]


async def test_an_expired_token_ends_the_session_at_its_expiry_without_a_client_message(
    live_server_url: str,
) -> None:
    private = serialization.load_pem_private_key(KEY.read_bytes(), None)
    now = time.time()
    # A token that is valid now (within the 10 s leeway) and ends 2 s from now
    short = jwt.encode(
        {"iss": "https://issuer.tests.invalid", "sub": "brief", "iat": int(now) - 60,
         "exp": now - 8, "aud": "django-reactivity-tests"},
        private, algorithm="RS256", headers={"kid": "tests-rs256"},  # type: ignore[arg-type]
    )
    async with SyncClient(live_server_url) as client:
        query = await client.subscribe("testapp:list_notes")
        await client.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                           "value": short})
        await client.wait_for(lambda: client.version["identity"] == 1)
        # When the client sends nothing more, and writes keep coming after the expiry
        deadline = now + 2
        client.on_transition = lambda _: transitions_at.append(time.time())
        transitions_at: list[float] = []
        await in_thread(Note.objects.create, body="before expiry")
        await client.result(query, lambda v: len(v) == 1)

        async def keep_writing() -> None:
            for i in range(100):
                await in_thread(Note.objects.create, body=f"write {i}")
                await asyncio.sleep(0.1)

        writer = asyncio.get_running_loop().create_task(keep_writing())
        # Then the server sends AuthError (not attempted) on its own at the expiry, and closes
        try:
            await client.closed(timeout=15)
        finally:
            writer.cancel()
        closed_at = time.time()
        assert len(transitions_at) >= 3  # the writes were reaching it before the expiry
        error = next(m for m in client.other if m["type"] == "AuthError")
        assert error["authUpdateAttempted"] is False and "expired" in error["error"]
        assert error["baseVersion"] == 1
        assert deadline - 0.5 <= closed_at < deadline + 5, (closed_at - deadline)
        # ... and no Transition went out after the token's end
        assert all(at < deadline + 0.5 for at in transitions_at), transitions_at
