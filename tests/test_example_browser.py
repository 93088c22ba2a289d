"""The example chat in real headless Chromium (Debian's), driven by Playwright.

The example project runs as it does under `make run`: its own database on the private Postgres,
daphne serving it, and a Celery worker for the scheduled expiry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from reactive.embedded.ports import free_port
from tests.support.servers import ROOT, scratch_dir

pytestmark = pytest.mark.timeout(240)

EXAMPLE = ROOT / "example_project"
DOCS_IMAGES = ROOT / "docs" / "images"
PASSWORD = "reactive-demo"


class Example:
    """The example project's processes: daphne and a Celery worker, restartable."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "DJANGO_SETTINGS_MODULE": "example_project.settings",
                    "CHAT_SUMMARIZER_URL": f"{self.url}/stand-in/summarize"}
        self.logs = scratch_dir("reactive-example-")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def migrate(self) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=EXAMPLE,
                       env=self.env, check=True, capture_output=True, timeout=180)

    def start(self, name: str) -> None:
        commands = {
            "asgi": [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                     "example_project.asgi:application"],
            "worker": [sys.executable, "-m", "celery", "-A", "example_project", "worker",
                       "--pool", "solo", "--loglevel", "INFO", "--without-mingle",
                       "--without-gossip"],
        }
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(commands[name], cwd=EXAMPLE, env=self.env,
                                                stdout=log, stderr=subprocess.STDOUT)
        if name == "asgi":
            self._wait_http()
        else:
            self._wait_log(name, "ready.")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _wait_log(self, name: str, text: str, timeout: float = 90) -> None:
        log = self.logs / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise TimeoutError(log.read_text(errors="replace")[-3000:])

    def _wait_http(self, timeout: float = 60) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError((self.logs / "asgi.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium "
                    "(make test does it when run as root).")
    return path


@pytest.fixture(scope="module")
def example(postgres_url: str, redis_url: str) -> Iterator[Example]:
    frontend = EXAMPLE / "frontend" / "node_modules" / "convex" / "dist" / "browser.bundle.js"
    if not frontend.exists():
        pytest.fail("The Convex browser bundle is missing: "
                    "npm ci --prefix example_project/frontend")
    name = f"example_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    # Redis database 1: the suite's own Celery worker consumes database 0's queue.
    app = Example(f"{postgres_url.rsplit('/', 1)[0]}/{name}", f"{redis_url.rsplit('/', 1)[0]}/1")
    app.migrate()
    app.start("asgi")
    app.start("worker")
    yield app
    app.stop("worker")
    app.stop("asgi")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield instance
        instance.close()


def login(browser: Any, example: Example, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{example.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#status:has-text('live')")
    return page


def send(page: Any, text: str, expires: str = "") -> None:
    page.fill("#composer input[name=body]", text)
    if expires:
        page.select_option("#composer select[name=expires_in]", expires)
    page.click("#composer button[type=submit]")


def test_a_message_reaches_another_browser(browser: Any, example: Example) -> None:
    ada, grace = login(browser, example, "ada"), login(browser, example, "grace")
    # When ada sends
    send(ada, "hello from ada")
    # Then grace sees it, pushed (the page has no polling); how fast is bench/'s question
    grace.wait_for_selector(".message:has-text('hello from ada')", timeout=30_000)
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    grace.screenshot(path=str(DOCS_IMAGES / "chat.png"))
    ada.context.close()
    grace.context.close()


def test_unread_counts_and_edits_are_live(browser: Any, example: Example) -> None:
    ada, grace = login(browser, example, "ada"), login(browser, example, "grace")
    grace.goto(f"{example.url}/#random")
    grace.wait_for_selector("#status:has-text('live')")
    send(ada, "are you there?")
    grace.wait_for_selector("[data-testid=unread-general]:has-text('1')")
    ada.once("dialog", lambda dialog: dialog.accept("are you there, grace?"))
    row = ada.locator(".message:has-text('are you there?')").last
    row.locator("button:has-text('edit')").click()
    grace.goto(f"{example.url}/#general")
    grace.wait_for_selector(".message:has-text('are you there, grace?')")
    grace.wait_for_selector(".message:has-text('(edited)')")
    ada.context.close()
    grace.context.close()


def test_an_admin_edit_appears_live(browser: Any, example: Example) -> None:
    grace = login(browser, example, "grace")
    send(grace, "typo in this mesage")
    grace.wait_for_selector(".message:has-text('typo in this mesage')")
    admin = login(browser, example, "ada")
    admin.goto(f"{example.url}/admin/chat/message/?q=mesage")
    admin.click("#result_list tbody tr a")
    admin.fill("textarea[name=body]", "typo in this message, fixed by an admin")
    admin.click("input[name=_save]")
    grace.wait_for_selector(".message:has-text('fixed by an admin')")
    admin.context.close()
    grace.context.close()


def test_scrolling_back_loads_older_messages(browser: Any, example: Example) -> None:
    with psycopg.connect(example.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO chat_channel (name, created_at) VALUES ('history', now())")
        conn.execute(
            "INSERT INTO chat_message (channel_id, author_name, body, created_at) "
            "SELECT (SELECT id FROM chat_channel WHERE name = 'history'), 'archive', "
            "'old message ' || n, now() FROM generate_series(1, 80) AS n"
        )
    page = login(browser, example, "grace")
    page.goto(f"{example.url}/#history")
    page.wait_for_selector(".message:has-text('old message 80')")
    assert page.locator(".message").count() <= 30
    beginning = page.locator(".note:has-text('beginning of #history')")
    for _ in range(15):  # each scroll to the top asks for one more page
        if beginning.count():
            break
        page.eval_on_selector("#messages", "el => { el.scrollTop = 0; }")
        page.wait_for_timeout(400)
    beginning.wait_for()
    assert page.locator(".message").count() == 80
    page.context.close()


def test_an_expiring_message_disappears_on_time(browser: Any, example: Example) -> None:
    page = login(browser, example, "ada")
    started = time.monotonic()  # before the send: the 10 s run from a later moment
    send(page, "this will self-destruct", expires="10")
    page.wait_for_selector(".message:has-text('self-destruct')")
    # Then it goes, however loaded the machine, and never before its time (load only delays)
    page.wait_for_selector(".message:has-text('self-destruct')", state="detached",
                           timeout=120_000)
    assert time.monotonic() - started >= 10 - 0.5  # expiry rounds to the job's due time
    page.context.close()


def test_the_page_recovers_after_a_server_restart(browser: Any, example: Example) -> None:
    grace = login(browser, example, "grace")
    example.stop("asgi")
    example.start("asgi")
    ada = login(browser, example, "ada")
    send(ada, "after the restart")
    grace.wait_for_selector(".message:has-text('after the restart')", timeout=30_000)
    grace.context.close()
    ada.context.close()


def test_the_summarizer_action_posts_a_summary(browser: Any, example: Example) -> None:
    page = login(browser, example, "ada")
    send(page, "one two three")
    page.wait_for_selector(".message:has-text('one two three')")
    page.click("#summarize")
    page.wait_for_selector(".message:has-text('summary-bot')")
    page.context.close()


def test_search_box_and_similar_messages_are_live(browser: Any, example: Example) -> None:
    ada, grace = login(browser, example, "ada"), login(browser, example, "grace")
    # Given grace typing a search for a word nobody wrote yet
    grace.fill("[data-testid=search-input]", "zebr")
    # When ada writes two messages with it, and one without
    send(ada, "a zebra crossing ahead")
    send(ada, "lunch at noon")
    send(ada, "zebra crossing closed")
    # Then grace's results show both as they arrive (the last word matched as a prefix)
    results = grace.locator("[data-testid=search-results] li")
    results.filter(has_text="zebra crossing closed").wait_for()
    results.filter(has_text="a zebra crossing ahead").wait_for()
    assert results.count() == 2
    # And the similar messages of one rank the other zebra message first
    results.filter(has_text="a zebra crossing ahead").locator("button").click()
    similar = grace.locator("[data-testid=similar-results] li")
    similar.first.wait_for()
    assert "zebra crossing closed" in similar.first.inner_text()
    ada.context.close()
    grace.context.close()
