"""The official React bindings in headless Chromium: an optimistic update is shown, then
replaced by the server's value, never stacked on it (G4: a mutation's MutationResponse goes
out before any Transition that includes its commit).

The page (tests/js/react/optimistic.jsx) is bundled with esbuild at set-up and served at the
live server's own origin through Playwright's request routing. A thread in this process keeps
writing elsewhere meanwhile, and half the mutations register a slow ``transaction.on_commit``
hook: both make rounds run between a mutation's commit and its response.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import JS_DIR
from tests.support.servers import scratch_dir

# Playwright's sync API runs an event loop in this thread, where Django's ORM refuses to run:
# the test reads and writes with psycopg, and the browser (function-scoped) is gone before the
# database is flushed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

DEPOSITS = 30
ACCOUNTS = 10
AMOUNT = 7


@pytest.fixture(scope="module")
def bundle() -> str:
    esbuild = JS_DIR / "node_modules" / ".bin" / "esbuild"
    if not (JS_DIR / "node_modules" / "react").is_dir() or not esbuild.exists():
        pytest.fail(f"react and esbuild are missing: run 'make js' (npm ci --prefix {JS_DIR}).")
    out = scratch_dir("reactive-react-") / "optimistic.js"
    subprocess.run([str(esbuild), "react/optimistic.jsx", "--bundle", "--format=iife",
                    "--jsx=automatic", "--define:process.env.NODE_ENV=\"production\"",
                    f"--outfile={out}", "--log-level=warning"],
                   cwd=JS_DIR, check=True, timeout=120)
    return Path(out).read_text()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium.")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  # the page is routed, not fetched: let it reach the loopback server
                  "--disable-features=LocalNetworkAccessChecks"])
        yield instance
        instance.close()


class OtherWriter:
    """Writes to an account no page shows, as fast as it can, until stopped: every commit
    wakes the Reactor for a round."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.name = f"other:{uuid.uuid4().hex[:8]}"
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OtherWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("INSERT INTO testapp_account (name, balance) VALUES (%s, 0)",
                         [self.name])
            while not self._stop.wait(0.005):
                conn.execute("UPDATE testapp_account SET balance = balance + 1 "
                             "WHERE name = %s", [self.name])
                self.writes += 1


def open_page(browser: Any, url: str, bundle: str, account: str, prefix: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda message: print("console:", message.text))
    page.on("pageerror", lambda error: print("pageerror:", error))
    html = (f"<!doctype html><html><body><div id=root></div><script>{bundle}</script>"
            "</body></html>")
    page.route(f"{url}/react-test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=html))
    page.goto(f"{url}/react-test/?account={account}&prefix={prefix}")
    page.wait_for_selector("#connection:has-text('connected')")
    try:
        page.wait_for_function(
            "window.renders.balance.length > 0 && window.renders.list.length > 0")
    except Exception:
        print(page.inner_html("#root"), page.evaluate("JSON.stringify(window.renders)"))
        raise
    return page


def test_optimistic_updates_are_replaced_never_stacked(
    live_server_url: str, test_database_url: str, browser: Any, bundle: str
) -> None:
    run = uuid.uuid4().hex[:8]
    account, prefix = f"bal:{run}", f"acc:{run}:"
    page = open_page(browser, live_server_url, bundle, account, prefix)
    try:
        with OtherWriter(test_database_url) as other:
            # useQuery + useMutation.withOptimisticUpdate: a deposit shows at once, then the
            # server's value, which is the same; never the deposit counted twice
            for i in range(DEPOSITS):
                before = page.evaluate("window.renders.balance.at(-1)")
                start = page.evaluate("window.renders.balance.length")
                page.evaluate("([amount, hook]) => window.app.deposit(amount, hook)",
                              [AMOUNT, i % 2 == 0])
                page.wait_for_function(f"window.renders.balance.at(-1) === {before + AMOUNT}")
                shown = page.evaluate(f"window.renders.balance.slice({start})")
                assert set(shown) <= {before, before + AMOUNT}, (i, before, shown)
            # usePaginatedQuery: insertAtTop, then optimisticallyUpdateValueInPaginatedQuery
            for i in range(ACCOUNTS):
                name = f"{prefix}{i:02}"
                start = page.evaluate("window.renders.list.length")
                page.evaluate("([name, hook]) => window.app.open(name, hook)", [name, i % 2 == 0])
                page.evaluate("([name, hook]) => window.app.bump(name, hook)", [name, i % 2 == 1])
                page.wait_for_function(
                    f"window.renders.list.at(-1)[0]?.name === {name!r} "
                    "&& window.renders.list.at(-1)[0].balance === 1")
                for shown in page.evaluate(f"window.renders.list.slice({start})"):
                    names = [doc["name"] for doc in shown]
                    assert names.count(name) <= 1, (i, shown)  # the optimistic row stacked
                    assert all(doc["balance"] <= 1 for doc in shown), (i, shown)
            assert other.writes > 0
        assert page.evaluate("window.app.connection.isWebSocketConnected") is True
        with psycopg.connect(test_database_url) as conn:
            row = conn.execute("SELECT balance FROM testapp_account WHERE name = %s",
                               [account]).fetchone()
        assert row == (DEPOSITS * AMOUNT,)
    finally:
        page.close()
