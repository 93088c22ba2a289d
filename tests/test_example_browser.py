"""The example chat in real headless Chromium (Debian's), driven by Playwright.

The example project runs as it does under `make run`: its own database on the private Postgres,
daphne serving it, and a Celery worker for the scheduled expiry. Pages are checked at a phone's
width (390 px) and a desktop's; the screenshots in docs/images/ come from here.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reactive.embedded.ports import free_port
from tests.support.servers import ROOT, scratch_dir

pytestmark = pytest.mark.timeout(240)

EXAMPLE = ROOT / "example_project"
# The screenshots in docs/images/ are refreshed only when asked (UPDATE_SCREENSHOTS=1 make
# test): a test run must not modify tracked files. Otherwise they go to a temporary folder.
DOCS_IMAGES = (ROOT / "docs" / "images" if os.environ.get("UPDATE_SCREENSHOTS")
               else Path(tempfile.gettempdir()) / "reactive-screenshots")
PASSWORD = "reactive-demo"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class Example:
    """The example project's processes: daphne and a Celery worker, restartable."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "DJANGO_SETTINGS_MODULE": "example_project.settings",
                    "CHAT_SUMMARIZER_URL": f"{self.url}/stand-in/summarize"}
        self.logs = scratch_dir("reactive-example-")
        self.env["MEDIA_ROOT"] = str(self.logs / "media")
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


def login(browser: Any, example: Example, username: str,
          viewport: dict[str, int] | None = None) -> Any:
    context = browser.new_context(viewport=viewport or {"width": 1100, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Everything the page logs as an error, and uncaught exceptions (asserted by tests below)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
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


def test_the_summarizer_action_posts_a_summary(browser: Any, example: Example) -> None:
    page = login(browser, example, "ada")
    send(page, "one two three")
    page.wait_for_selector(".message:has-text('one two three')")
    page.click("#summarize")
    page.wait_for_selector(".message:has-text('summary-bot')")
    page.context.close()


def shows_error(page: Any, text: str) -> None:
    try:
        page.wait_for_selector(f"#error:visible:has-text({text!r})")
    except Exception:
        shown = page.locator("#error").inner_text()
        raise AssertionError(f"expected the error {text!r}, the page shows {shown!r}; "
                             f"console: {page.console_errors}") from None


def box(page: Any, selector: str) -> dict[str, float]:
    found: dict[str, float] | None = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return found


def assert_layout_fits(page: Any, viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    send_button = box(page, "#composer button[type=submit]")
    assert send_button["x"] + send_button["width"] <= viewport["width"]
    assert send_button["y"] + send_button["height"] <= viewport["height"]
    assert page.evaluate("""() => {
        const list = document.querySelector('#messages').getBoundingClientRect();
        const hit = document.elementFromPoint(list.x + list.width / 2, list.y + list.height / 2);
        return document.querySelector('#messages').contains(hit);
    }""")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
    assert "{#" not in page.inner_text("body")  # no template syntax leaking into the page


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "desktop"])
def test_the_page_works_at_phone_and_desktop_widths(
    browser: Any, example: Example, viewport: dict[str, int],
) -> None:
    page = login(browser, example, "grace", viewport)
    send(page, "a message with a time and initials")
    row = page.locator(".message:has-text('a message with a time and initials')").last
    row.wait_for()
    # Then each message shows its author's initials and the time it was sent
    assert row.locator(".avatar").inner_text() == "GR"
    assert row.locator("time").get_attribute("datetime")
    # And the composer and Send are in view, the messages not covered by the sidebar (at the
    # narrowest phones too)
    assert_layout_fits(page, viewport)
    if viewport is PHONE:
        assert_layout_fits(page, {"width": 360, "height": 640})
        page.set_viewport_size(viewport)
        # The search panel is a row the Search button opens and closes on phones
        search = page.locator("[data-testid=search-input]")
        assert search.is_hidden()
        page.click("#search-toggle")
        search.wait_for(state="visible")
        assert_layout_fits(page, viewport)
        page.click("#search-toggle")
        search.wait_for(state="hidden")
    # When a bad channel name is submitted, it is refused with a message and nothing is created
    page.fill("#new-channel input[name=name]", "Bad Name!")
    page.press("#new-channel input[name=name]", "Enter")
    shows_error(page, "Channel names are lowercase letters")
    assert page.locator("#channels a:has-text('Bad Name')").count() == 0
    assert page.evaluate("location.hash") in ("", "#general")
    # And the old error goes with the next action; a good name opens the new channel
    name = f"design-{viewport['width']}"
    page.fill("#new-channel input[name=name]", name)
    page.press("#new-channel input[name=name]", "Enter")
    page.wait_for_selector(f"#channels a.current:has-text('{name}')")
    assert page.locator("#error").is_hidden()
    assert page.locator("#channel-title").inner_text() == f"#{name}"
    # And an error from the server is shown, then cleared by the next send
    send(page, "   ")
    shows_error(page, "Write something first.")
    send(page, "first words here")
    page.wait_for_selector(".message:has-text('first words here')")
    assert page.locator("#error").is_hidden()
    assert page.console_errors == []
    page.context.close()


def test_the_indicator_follows_the_connection_and_nothing_is_queued_while_offline(
    browser: Any, example: Example,
) -> None:
    ada, grace = login(browser, example, "ada", PHONE), login(browser, example, "grace")
    # When the server stops
    example.stop("asgi")
    try:
        # Then the indicator says so (the client's connectionState(), not a guess)
        ada.wait_for_selector("#status[data-state=offline]:has-text('offline')")
        # And a send is refused with a message, the text kept, nothing queued for later
        send(ada, "sent while away")
        shows_error(ada, "You are offline")
        assert ada.input_value("#composer input[name=body]") == "sent while away"
    finally:
        example.start("asgi")
    # When it is back, the indicator says live again and sending works
    ada.wait_for_selector("#status[data-state=live]", timeout=60_000)
    grace.wait_for_selector("#status[data-state=live]", timeout=60_000)
    ada.click("#composer button[type=submit]")
    grace.wait_for_selector(".message:has-text('sent while away')", timeout=30_000)
    assert ada.locator("#error").is_hidden()
    assert grace.locator(".message:has-text('sent while away')").count() == 1  # not twice
    # The only console errors are the browser's own refused reconnects while it was down
    for page in (ada, grace):
        assert [e for e in page.console_errors if "WebSocket connection" not in e] == []
        page.context.close()


def test_an_image_uploaded_by_one_user_appears_live_for_the_other(
    browser: Any, example: Example,
) -> None:
    ada, grace = login(browser, example, "ada", PHONE), login(browser, example, "grace", DESKTOP)
    for page in (ada, grace):  # a channel of their own, for a screenshot without test chatter
        page.goto(f"{example.url}/#launch")
    send(grace, "The launch page is live on staging. Can someone send the new banner?")
    grace.wait_for_selector(".message:has-text('Can someone send the new banner?')")
    send(ada, "On it, exporting now.")
    # When ada attaches an image with a caption (upload URL, POST, send_image)
    ada.fill("#composer input[name=body]", "Here it is: 160 by 96, as agreed.")
    ada.set_input_files("#composer input[name=image]", files=[
        {"name": "logo.png", "mimeType": "image/png", "buffer": png(160, 96)}])
    # Then grace sees it, pushed, and the browser loads it from its signed URL
    image = grace.locator(".message:has-text('Here it is') img.attachment")
    image.wait_for(timeout=30_000)
    grace.wait_for_function(
        "() => [...document.querySelectorAll('img.attachment')].some("
        "img => img.complete && img.naturalWidth === 160)")
    ada.wait_for_function("document.querySelector('#composer input[name=body]').value === ''")
    # And a file that is not an image is refused before anything is uploaded
    ada.set_input_files("#composer input[name=image]", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    shows_error(ada, "Only images can be attached.")
    send(ada, "Oops, wrong file. The PNG above is the one.")
    grace.wait_for_selector(".message:has-text('the one')")
    assert ada.locator("#error").is_hidden()  # the old error went with the next action
    send(grace, "Perfect, merging it.")
    ada.wait_for_selector(".message:has-text('Perfect, merging it.')")
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    grace.screenshot(path=str(DOCS_IMAGES / "chat.png"))
    ada.screenshot(path=str(DOCS_IMAGES / "chat-phone.png"))
    assert ada.console_errors == [] and grace.console_errors == []
    ada.context.close()
    grace.context.close()


def png(width: int, height: int) -> bytes:
    """A small RGB PNG (a diagonal gradient in the example's greens), made without Pillow."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((20 + x // 3, 90 + (x + y) // 3, 60 + y)) for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


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


def add_note(page: Any, body: str, tags: str = "") -> None:
    page.fill("#new-note input[name=body]", body)
    page.fill("#new-note input[name=tags]", tags)
    page.click("#new-note button[type=submit]")


def open_notes(page: Any, viewport: dict[str, int]) -> None:
    """On phones the notes panel is a row the Notes button opens; on desktops it is shown."""
    if viewport is PHONE:
        assert page.locator("[data-testid=notes-panel]").is_hidden()
        page.click("#notes-toggle")
    page.locator("#new-note input[name=body]").wait_for(state="visible")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "desktop"])
def test_schema_free_notes_pin_live_at_phone_and_desktop_widths(
    browser: Any, example: Example, viewport: dict[str, int],
) -> None:
    ada, grace = login(browser, example, "ada", viewport), login(browser, example, "grace")
    open_notes(ada, viewport)
    tag = f"w{viewport['width']}"
    # When ada adds a note with tags
    add_note(ada, f"Retro notes for {tag}", f"retro, {tag}")
    card = ada.locator(f"[data-testid=recent-notes] li:has-text('Retro notes for {tag}')")
    card.wait_for()
    assert card.locator(".tag").all_inner_texts() == ["retro", tag]
    assert ada.input_value("#new-note input[name=body]") == ""
    # And pins it: grace's pinned list shows it, pushed, newest first
    card.locator("button:has-text('pin')").click()
    pinned = grace.locator("[data-testid=pinned-notes] li")
    pinned.filter(has_text=f"Retro notes for {tag}").wait_for()
    add_note(ada, f"Ship it on Friday ({tag})", "release")
    ada.locator(f"[data-testid=recent-notes] li:has-text('Ship it on Friday ({tag})') "
                "button:has-text('pin')").click()
    grace.wait_for_function(
        "tag => document.querySelector('[data-testid=pinned-notes] li')"
        "?.textContent.includes(`Ship it on Friday (${tag})`)", arg=tag)
    # And the layout still fits, with the notes open, at this width (and 360 px on phones)
    assert_layout_fits(ada, viewport)
    if viewport is PHONE:
        assert_layout_fits(ada, {"width": 360, "height": 640})
        ada.set_viewport_size(viewport)
    # When she unpins the first and deletes the second, both leave grace's pinned list
    ada.locator(f"[data-testid=pinned-notes] li:has-text('Retro notes for {tag}') "
                "button:has-text('unpin')").click()
    pinned.filter(has_text=f"Retro notes for {tag}").wait_for(state="detached")
    ada.locator(f"[data-testid=pinned-notes] li:has-text('Ship it on Friday ({tag})') "
                "button:has-text('delete')").click()
    pinned.filter(has_text=f"Ship it on Friday ({tag})").wait_for(state="detached")
    # And bad input is refused with the server's message, nothing added
    add_note(ada, "   ")
    shows_error(ada, "Write the note first.")
    add_note(ada, "Tagged badly", "not a tag!")
    shows_error(ada, "Up to 5 tags")
    assert ada.locator("[data-testid=recent-notes] li:has-text('Tagged badly')").count() == 0
    assert ada.input_value("#new-note input[name=body]") == "Tagged badly"  # kept to fix
    if viewport is PHONE:  # the Notes button closes the row again
        ada.click("#notes-toggle")
        ada.locator("[data-testid=notes-panel]").wait_for(state="hidden")
    assert ada.console_errors == [] and grace.console_errors == []
    ada.context.close()
    grace.context.close()


def test_notes_screenshots(browser: Any, example: Example) -> None:
    """docs/images/notes.png and notes-phone.png (the tutorial's notes part)."""
    desk, phone = login(browser, example, "grace", DESKTOP), login(browser, example, "ada", PHONE)
    for page in (desk, phone):  # a channel of its own, without the other tests' chatter
        page.goto(f"{example.url}/#planning")
        page.wait_for_selector("#channel-title:has-text('#planning')")
    send(desk, "Pinned the review time and the freeze in Notes, on the left.")
    phone.wait_for_selector(".message:has-text('Pinned the review time')", timeout=30_000)
    send(phone, "Thanks! Pinning the tour ideas once I have written them up.")
    desk.wait_for_selector(".message:has-text('Pinning the tour ideas')", timeout=30_000)
    for body, tags in (("Design review moved to Thursday 14:00", "meeting, design"),
                       ("Staging is frozen until the release is out", "release"),
                       ("Ideas for the onboarding tour", "product")):
        add_note(desk, body, tags)
        desk.locator(f"[data-testid=recent-notes] li:has-text({body!r})").wait_for()
    for body in ("Design review moved", "Staging is frozen"):
        desk.locator(f"[data-testid=recent-notes] li:has-text({body!r}) "
                     "button:has-text('pin')").click()
        desk.locator(f"[data-testid=pinned-notes] li:has-text({body!r})").wait_for()
    open_notes(phone, PHONE)
    phone.locator("[data-testid=pinned-notes] li:has-text('Staging is frozen')").wait_for()
    desk.mouse.move(900, 400)  # no hover highlight in the picture
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    desk.screenshot(path=str(DOCS_IMAGES / "notes.png"))
    phone.screenshot(path=str(DOCS_IMAGES / "notes-phone.png"))
    assert desk.console_errors == [] and phone.console_errors == []
    desk.context.close()
    phone.context.close()
