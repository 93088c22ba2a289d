"""The admin's health page: staff only, linked from the admin index, showing the slowest and
conflicting functions, the scheduler, reactions and data migrations (Django test client, real
Postgres), and a live server's Reactor figures in headless Chromium."""

from __future__ import annotations

import asyncio
import datetime
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from reactive.functions.runtime import Call, runtime
from reactive.models import DataMigration, Job, Reaction, ReactionState
from tests.observability.racing import race_transfers
from tests.support.syncclient import SyncClient, http_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

URL = "/admin/reactive/health/"


def test_staff_see_functions_conflicts_scheduler_reactions_and_migrations() -> None:
    # Given calls (one slow and failing, so that it tops the slowest whatever else this
    # process ran before), lost races, a late job, a parked reaction, a migration
    assert runtime.call(Call("testapp/observe:slow_failure", {"seconds": 1.2})).error
    runtime.call(Call("testapp:echo", {"value": 1}))
    race_transfers(10)
    now = timezone.now()
    Job.objects.create(function="testapp:echo", due_at=now - datetime.timedelta(seconds=20))
    Reaction.objects.create(name="health-reaction", snapshot="1:1:", state=ReactionState.FAILED,
                            cursor_at=now - datetime.timedelta(seconds=90),
                            error="Traceback...\nValueError: parked here")
    DataMigration.objects.create(name="health-migration", batch_size=10, total=40, done=10)
    client = Client()
    client.force_login(User.objects.create_user("ops", is_staff=True))
    # When a staff member opens the page
    page = client.get(URL)
    # Then it shows each part
    assert page.status_code == 200
    html = page.content.decode()
    for part in ('id="reactor"', 'id="scheduler"', 'id="slowest"', 'id="conflicts"',
                 'id="reactions"', 'id="migrations"'):
        assert part in html, part
    slowest = html.split('id="slowest"')[1].split("</table>")[0]
    row = slowest.split("testapp/observe:slow_failure</td>")[1].split("</tr>")[0]
    assert row.startswith("<td>1</td><td>1</td>"), row  # one call, one error
    assert "testapp:transfer" in html and "40001" in html
    assert "health-reaction" in html and "ValueError: parked here" in html
    assert "health-migration" in html and "10 / 40" in html
    assert "20." in html.split('id="scheduler"')[1].split("</table>")[0]  # oldest due: 20+ s
    # and the admin index links to it
    assert URL in client.get("/admin/").content.decode()
    assert URL in client.get("/admin/reactive/").content.decode()


def test_the_page_is_for_active_staff_only_and_read_only() -> None:
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    client = Client()
    client.force_login(User.objects.create_user("plain"))
    assert client.get(URL).status_code == 302  # the admin itself refuses non-staff
    client.force_login(User.objects.create_user("ops2", is_staff=True))
    assert client.get(URL).status_code == 200
    # nothing to add, change or delete
    assert client.get("/admin/reactive/health/add/").status_code == 403
    assert client.post(URL, {"action": "delete_selected"}).status_code == 405
    assert client.get(URL + "?bad=%00&o=zzz").status_code == 200  # query junk is ignored


async def subscribe_once(url: str) -> None:
    async with SyncClient(url) as client:
        await client.result(await client.subscribe("testapp:list_notes"))


def test_a_live_servers_page_shows_its_reactor_in_a_browser(
    live_server_url: str, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium.")
    from playwright.sync_api import sync_playwright

    # Given a live server that has run rounds (a sync session's query) and calls
    User.objects.create_superuser("boss", password="health-pass-1")
    asyncio.run(subscribe_once(live_server_url))
    # (a call slow enough to top the list whatever earlier tests ran on this shared server)
    http_call(live_server_url, "query", "testapp/clients:napping_count",
              {"prefix": "health", "index": 0, "seconds": 1.5})
    shot = tmp_path / "health.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.set_default_timeout(15_000)
            # When the admin logs in and follows the index's link
            page.goto(f"{live_server_url}/admin/login/?next=/admin/")
            page.fill("input[name=username]", "boss")
            page.fill("input[name=password]", "health-pass-1")
            page.click("input[type=submit]")
            page.click(f"a[href='{URL}']")
            page.wait_for_selector("#reactor")
            reactor: Any = page.inner_text("#reactor")
            slowest: Any = page.inner_text("#slowest")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    # Then the server's own figures are there, and the page rendered
    rounds = next(line for line in reactor.splitlines() if line.startswith("rounds"))
    assert int(rounds.split()[-1]) >= 1, reactor
    assert "mean round" in reactor and "commit → push lag" in reactor
    assert "testapp/clients:napping_count" in slowest
    assert shot.stat().st_size > 10_000
    assert requests.get(f"{live_server_url}{URL}", timeout=10,
                        allow_redirects=False).status_code == 302
