"""G5 from any writer: writes that never go through a mutation reach subscribed clients.

Change capture lives in Postgres (triggers), so the Django admin, ``QuerySet.update()``,
``bulk_create``, raw SQL on another connection, another process (``manage.py shell``) and
TRUNCATE are all pushed like a mutation's writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import requests

from reactive.functions.runtime import in_thread
from tests.support.servers import ROOT
from tests.support.syncclient import SyncClient
from tests.testapp.models import Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class Watcher:
    """A client subscribed to every note, and to one note by id."""

    def __init__(self, client: SyncClient, note: Note) -> None:
        self.client = client
        self.note = note
        self.all = -1
        self.one = -1

    async def start(self) -> None:
        self.all = await self.client.subscribe("testapp:list_notes", {"limit": 1000})
        self.one = await self.client.subscribe("testapp:get_note", {"id": str(self.note.pk)})
        await self.client.result(self.all)
        await self.client.result(self.one)

    async def bodies(self, predicate: Any) -> list[str]:
        """Wait until the bodies of all notes, in id order, satisfy ``predicate``."""
        notes = await self.client.result(
            self.all, lambda v: predicate([n["body"] for n in v]), timeout=10)
        return [n["body"] for n in notes]

    async def the_note(self, predicate: Any) -> Any:
        return await self.client.result(self.one, predicate, timeout=10)


@pytest_asyncio.fixture
async def watcher(live_server_url: str) -> AsyncIterator[Watcher]:
    note = await in_thread(Note.objects.create, body="first")
    async with SyncClient(live_server_url) as client:
        watching = Watcher(client, note)
        await watching.start()
        assert await watching.bodies(lambda b: b == ["first"])
        yield watching
        assert client.errors == {}
        assert [m for m in client.other if m["type"] != "Ping"] == []


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    page.raise_for_status()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def admin_session(url: str, username: str, password: str) -> requests.Session:
    """Log in to the Django admin of the live server as a browser would."""
    session = requests.Session()
    token = _csrf(session, f"{url}/admin/login/")
    done = session.post(f"{url}/admin/login/?next=/admin/", timeout=10, data={
        "csrfmiddlewaretoken": token, "username": username, "password": password,
        "next": "/admin/"})
    assert done.ok and "/admin/login/" not in done.url, done.text[:500]
    return session


def admin_post(session: requests.Session, url: str, data: dict[str, str]) -> None:
    token = _csrf(session, url)
    done = session.post(url, timeout=10, allow_redirects=False,
                        data={"csrfmiddlewaretoken": token, **data})
    assert done.status_code == 302, done.text[-2000:]


async def test_admin_change_form_reaches_subscribers(live_server_url: str,
                                                     watcher: Watcher) -> None:
    # Given a superuser logged in to the admin
    from django.contrib.auth.models import User

    await in_thread(User.objects.create_superuser, "admin", "admin@example.com", "pw-123456")
    session = await in_thread(admin_session, live_server_url, "admin", "pw-123456")
    change = f"{live_server_url}/admin/testapp/note/{watcher.note.pk}/change/"
    # When the note's change form is submitted
    await in_thread(admin_post, session, change, {"body": "edited in the admin", "author": "",
                                                  "_save": "Save"})
    # Then both subscriptions show the edit
    assert await watcher.bodies(lambda b: b == ["edited in the admin"])
    note = await watcher.the_note(lambda n: n and n["body"] == "edited in the admin")
    assert note["_id"] == str(watcher.note.pk)
    # And an add form and a delete confirmation reach them too
    await in_thread(admin_post, session, f"{live_server_url}/admin/testapp/note/add/",
                    {"body": "added in the admin", "author": "", "_save": "Save"})
    await watcher.bodies(lambda b: b == ["edited in the admin", "added in the admin"])
    await in_thread(admin_post, session, f"{change[:-len('change/')]}delete/", {"post": "yes"})
    assert await watcher.bodies(lambda b: b == ["added in the admin"])
    assert await watcher.the_note(lambda n: n is None) is None


async def test_queryset_update_reaches_subscribers(watcher: Watcher) -> None:
    await in_thread(Note.objects.create, body="second")
    await watcher.bodies(lambda b: b == ["first", "second"])
    count = await in_thread(lambda: Note.objects.filter(body__in=["first", "second"])
                            .update(body="updated in bulk"))
    assert count == 2
    assert await watcher.bodies(lambda b: b == ["updated in bulk"] * 2)
    await watcher.the_note(lambda n: n and n["body"] == "updated in bulk")


async def test_bulk_create_reaches_subscribers(watcher: Watcher) -> None:
    await in_thread(Note.objects.bulk_create, [Note(body=f"bulk {i}") for i in range(50)])
    bodies = await watcher.bodies(lambda b: len(b) == 51)
    assert bodies == ["first"] + [f"bulk {i}" for i in range(50)]


async def test_raw_sql_on_another_connection_reaches_subscribers(
    test_database_url: str, watcher: Watcher
) -> None:
    async with await psycopg.AsyncConnection.connect(test_database_url) as conn:
        # One transaction with several statements: seen together, once committed.
        async with conn.transaction():
            await conn.execute("UPDATE testapp_note SET body = %s WHERE id = %s",
                               ["raw update", watcher.note.pk])
            await conn.execute("INSERT INTO testapp_note (body, created_at) VALUES "
                               "(%s, now()), (%s, now())", ["raw one", "raw two"])
        assert await watcher.bodies(lambda b: b == ["raw update", "raw one", "raw two"])
        await watcher.the_note(lambda n: n and n["body"] == "raw update")
        await conn.execute("DELETE FROM testapp_note WHERE body = %s", ["raw one"])
        await conn.commit()
        assert await watcher.bodies(lambda b: b == ["raw update", "raw two"])


async def test_manage_py_shell_in_another_process_reaches_subscribers(
    test_database_url: str, watcher: Watcher
) -> None:
    code = ("from tests.testapp.models import Note; "
            f"Note.objects.filter(pk={watcher.note.pk}).update(body='from the shell'); "
            "Note.objects.create(body='created in the shell')")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": test_database_url}
    # `python -m django` is manage.py for a project without one (same command, same settings).
    done = await in_thread(subprocess.run, [sys.executable, "-m", "django", "shell", "-c", code],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert await watcher.bodies(lambda b: b == ["from the shell", "created in the shell"])
    await watcher.the_note(lambda n: n and n["body"] == "from the shell")


async def test_truncate_reaches_subscribers(test_database_url: str, watcher: Watcher) -> None:
    await in_thread(Note.objects.create, body="second")
    await watcher.bodies(lambda b: b == ["first", "second"])
    async with await psycopg.AsyncConnection.connect(test_database_url,
                                                     autocommit=True) as conn:
        await conn.execute("TRUNCATE testapp_note CASCADE")
    assert await watcher.bodies(lambda b: b == []) == []
    assert await watcher.the_note(lambda n: n is None) is None
    # and the table keeps being watched after it
    await in_thread(Note.objects.create, body="after truncate")
    assert await watcher.bodies(lambda b: b == ["after truncate"])
