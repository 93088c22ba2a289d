"""Day-one mistakes in a fresh ``startproject``, each reproduced in a throwaway project: every
one ends in a message that names the fix (issue #9), fast and without a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from reactive.embedded import PostgresServer
from reactive.embedded.ports import free_port
from tests.support import servers
from tests.support.fresh import CHANNELS_ROUTED_ASGI, ROUTED_ASGI, FreshProject, new_database
from tests.support.syncclient import SyncClient
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> FreshProject:
    """One ``startproject`` for the module; each test gets a copy of it."""
    return FreshProject(tmp_path_factory.mktemp("template") / "site")


@pytest.fixture
def project(tmp_path: Path, template: FreshProject) -> FreshProject:
    return FreshProject(tmp_path / "site", template)


@pytest.fixture(scope="module")
def startup(template: FreshProject) -> float:
    """How long a manage.py command takes to start on this machine right now (no database)."""
    started = time.monotonic()
    template.manage("diffsettings")
    return time.monotonic() - started


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> str:
    return new_database(postgres_url)


RUNS = {  # reactive_run cases on the migrated project: name -> arguments
    "typo": ("chat:lst", '{"channel": "general"}'),
    "argument": ("chat:send", '{"channel": "g", "bodyy": "hi"}'),
    "convex_error": ("chat:send", '{"channel": "g", "body": " "}'),
    "negative_limit": ("chat:list", '{"channel": "g", "limit": -1}'),
    "query_writes": ("chat:tidy",),
}


def _unwired(project: FreshProject) -> None:
    """reactive installed on PostgreSQL, and nothing else wired."""
    project.append_settings("import dj_database_url\n"
                            "DATABASES = {'default': dj_database_url.config()}")


def _prefixed(project: FreshProject) -> None:
    """The API mounted under a prefix."""
    _unwired(project)
    project.write("mysite/urls.py", "from django.urls import include, path\n"
                  "urlpatterns = [path('backend/', include('reactive.urls'))]\n")


def _misrouted(project: FreshProject) -> None:
    """Wired for reactive except its asgi.py (startproject's, HTTP only), with daphne appended
    after staticfiles, a celery.py that never autodiscovers, and origins the browser's
    websocket will not match."""
    project.wire(asgi=False)
    project.append_settings('INSTALLED_APPS.remove("daphne")\nINSTALLED_APPS.append("daphne")\n'
                            "REACTIVE = {'CORS_ALLOWED_ORIGINS': ['http://app.example:5173', "
                            "'http://localhost:3000/']}")
    project.write("mysite/celery.py", "from celery import Celery\n\napp = Celery('mysite')\n"
                  "app.config_from_object('django.conf:settings', namespace='CELERY')\n")


def _fixed(project: FreshProject) -> None:
    """``_misrouted``, with each mistake fixed as its hint says."""
    _misrouted(project)
    project.write("mysite/asgi.py", ROUTED_ASGI)
    project.append("mysite/celery.py", "app.autodiscover_tasks()")
    project.append_settings('INSTALLED_APPS.remove("daphne")\nINSTALLED_APPS.insert(0, "daphne")\n'
                            "REACTIVE = {}")


def _routed_by_channels(project: FreshProject) -> None:
    """Routed as earlier versions documented: Channels' URLRouter, the sync endpoint in it."""
    project.wire(asgi=False)
    project.write("mysite/asgi.py", CHANNELS_ROUTED_ASGI)


def _channels_without_sync(project: FreshProject) -> None:
    """A Channels websocket router with the project's own routes only."""
    project.wire(asgi=False)
    project.write("mysite/asgi.py", CHANNELS_ROUTED_ASGI.replace(
        "URLRouter(websocket_urlpatterns)", "URLRouter([])"))


def _defined_twice(project: FreshProject) -> None:
    """A functions.py that defines ``send`` twice."""
    project.wire()
    project.append("chat/functions.py", "@mutation\ndef send(ctx: MutationCtx, text: str) -> str:"
                   "\n    return text\n")


MISTAKES: dict[str, tuple[Callable[[FreshProject], None], tuple[str, ...]]] = {
    # name: (the project's state, the command the user runs)
    "sqlite": (lambda project: None, ("migrate",)),
    "unwired": (_unwired, ("check",)),
    "prefixed": (_prefixed, ("check",)),
    "misrouted": (_misrouted, ("check",)),
    "fixed": (_fixed, ("check",)),
    "routed_by_channels": (_routed_by_channels, ("check",)),
    "channels_without_sync": (_channels_without_sync, ("check",)),
    "defined_twice": (_defined_twice, ("check",)),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, template: FreshProject,
             database_url: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each of ``MISTAKES`` in a copy of the template, its command run in a process of its own,
    and a correctly wired project, migrated, with each of ``RUNS`` run by reactive_run (one
    process for those: each command's output and exit status are still its own). Independent
    processes, so they run side by side, as many at once as there are cores."""
    root = tmp_path_factory.mktemp("mistakes")
    projects = {}
    for name, (given, _) in MISTAKES.items():
        projects[name] = FreshProject(root / name, template)
        given(projects[name])
    wired = FreshProject(root / "wired", template)
    wired.wire()
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        runs = pool.submit(wired.manage_many, ("makemigrations", "chat"), ("migrate", "--no-input"),
                           *(("reactive_run", *args) for args in RUNS.values()),
                           DATABASE_URL=database_url)
        futures = {name: pool.submit(projects[name].manage, *command, DATABASE_URL=database_url)
                   for name, (_, command) in MISTAKES.items()}
    for step in runs.result()[:2]:
        assert step.returncode == 0, step.stdout + step.stderr
    return {**{name: future.result() for name, future in futures.items()},
            **dict(zip(RUNS, runs.result()[2:], strict=True))}


def test_sqlite_database_is_reported_by_E002_naming_the_settings_file(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Given startproject's SQLite database and `reactive` installed
    # When the user migrates
    done = outcomes["sqlite"]
    # Then a system check names the fix, with no traceback (the trigger check used to crash)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "(reactive.E002)" in output and "mysite/settings.py" in output
    assert "reactive_dev" in output
    assert "Traceback" not in output and "to_regclass" not in output


def test_missing_asgi_application_and_urls_are_reported_naming_the_files(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Given reactive installed on PostgreSQL, and nothing else wired
    # When the user runs the checks
    done = outcomes["unwired"]
    # Then W050 asks for ASGI_APPLICATION in settings.py and W052 for the URLs in urls.py
    assert "(reactive.W050)" in done.stderr
    assert "ASGI_APPLICATION = 'mysite.asgi.application'" in done.stderr
    assert "(reactive.W052)" in done.stderr
    assert 'mysite/urls.py add path("", include("reactive.urls"))' in done.stderr
    # And the API mounted under a prefix is W053
    below = outcomes["prefixed"]
    assert "(reactive.W053)" in below.stderr and "'backend/'" in below.stderr


def test_routing_daphne_celery_and_origin_mistakes_each_name_their_fix(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Given a project wired for reactive except its asgi.py (startproject's, HTTP only), with
    # daphne appended after staticfiles, a celery.py that never autodiscovers, and origins
    # the browser's websocket will not match
    # When the user runs the checks
    done = outcomes["misrouted"]
    # Then each names its fix: E051 asgi.py and reactive.routing, W051 daphne's place, W054
    # autodiscovery, W055/W056 the origins
    assert done.returncode != 0
    assert "(reactive.E051)" in done.stderr
    assert "mysite/asgi.py" in done.stderr and "reactive.routing" in done.stderr
    assert "(reactive.W051)" in done.stderr and "move 'daphne' to the top" in done.stderr
    assert "(reactive.W054)" in done.stderr and "app.autodiscover_tasks()" in done.stderr
    assert "(reactive.W055)" in done.stderr and "http://app.example:5173" in done.stderr
    assert "(reactive.W056)" in done.stderr and "'http://localhost:3000/'" in done.stderr
    # And once each is fixed as its hint says, the project is clean
    fixed = outcomes["fixed"]
    assert fixed.returncode == 0, fixed.stderr
    assert "no issues" in fixed.stdout


def test_the_sync_endpoint_below_channels_router_passes_and_a_router_without_it_is_E052(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Given asgi.py as earlier versions documented it (Channels' URLRouter and
    # AuthMiddlewareStack around reactive.routing.websocket_urlpatterns)
    # Then the checks pass
    routed = outcomes["routed_by_channels"]
    assert routed.returncode == 0, routed.stderr
    assert "no issues" in routed.stdout
    # And a Channels router without the sync endpoint is E052, naming both ways to route it
    unrouted = outcomes["channels_without_sync"]
    assert unrouted.returncode != 0
    assert "(reactive.E052)" in unrouted.stderr and "mysite/asgi.py" in unrouted.stderr
    assert "sync_websocket(fallback=" in unrouted.stderr
    assert "websocket_urlpatterns" in unrouted.stderr


def test_function_name_typo_suggests_the_right_name(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outcomes["typo"]
    assert done.returncode == 1
    assert "Could not find public function for 'chat:lst'. Did you mean 'chat:list'?" in done.stderr


def test_argument_typo_suggests_the_right_argument(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outcomes["argument"]
    assert done.returncode == 1
    assert "bodyy: unknown argument, did you mean 'body'? (the function takes channel, body)" \
        in done.stderr


def test_convex_error_message_is_json(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outcomes["convex_error"]
    assert done.returncode == 1
    assert 'ConvexError: {"code":"EMPTY"}' in done.stderr and "'code'" not in done.stderr


def test_negative_limit_from_the_guide_is_a_clear_argument_error(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outcomes["negative_limit"]
    assert done.returncode == 1
    assert "limit: Input should be greater than or equal to 1 (got -1)" in done.stderr
    assert "Negative indexing" not in done.stderr


def test_query_that_writes_prints_the_message_without_a_traceback(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outcomes["query_writes"]
    assert done.returncode == 1
    assert "ReadOnly" in done.stderr or "read-only" in done.stderr.lower()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 3, done.stderr


def test_function_defined_twice_in_a_module_fails_at_import_naming_both_lines(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Given a functions.py that defines `send` twice
    # When anything starts Django
    done = outcomes["defined_twice"]
    # Then the import fails naming both definitions
    assert done.returncode != 0
    lines = re.findall(r"chat/functions\.py:(\d+)", done.stderr)
    assert "defined twice in module chat.functions" in done.stderr
    assert len(set(lines)) == 2, done.stderr


USERS = """
@query
def users(ctx: QueryCtx) -> int:
    from django.contrib.auth.models import User

    return User.objects.count()


@query
def me(ctx: QueryCtx) -> str | None:
    return ctx.auth.user.get_username() if ctx.auth.user.is_authenticated else None
"""
LOG_IN = ("from django.contrib.auth.models import User; from django.test import Client; "
          "browser = Client(); browser.force_login(User.objects.create_user('dana')); "
          "print(browser.cookies['sessionid'].value)")
FIRST_QUERY = ("shell", "-c", "from chat.models import Message; Message.objects.count()")


@pytest.fixture
def stoppable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which it stops halfway."""
    with servers.stoppable_postgres() as server:
        yield server


def test_reactive_dev_and_every_entry_point_report_a_stopped_database_within_5s(
    project: FreshProject, startup: float, stoppable_postgres: PostgresServer, redis_url: str,
) -> None:
    # Given a wired project without mysite/celery.py, and chat without migrations, served by
    # reactive_dev on a PostgreSQL of its own
    project.wire()
    project.append("chat/functions.py", USERS)
    project.append_settings('REACTIVE = {"WEBSOCKET_SESSION_RECHECK_SECONDS": 1}')
    database_url = new_database(stoppable_postgres.url)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _reactive_dev(project, port, env) as lines:
        # Then it said what it runs, what it skips and why, one prefix per process
        text = "\n".join(lines)
        assert "dev | runs   asgi: daphne serving mysite.asgi:application" in text
        assert ("dev | skips  Celery worker and beat: there is no mysite/celery.py" in text
                and "crons will not run" in text), text
        assert "migrate | " in text
        # And a model without migrations is named with the command that fixes it
        assert "chat.Message has no table; run python manage.py makemigrations chat" in text
        # And a query works over HTTP and the websocket: the pool has connected
        assert _http_query(url, "chat:users") == {"status": "success", "value": 0,
                                                  "logLines": []}
        assert asyncio.run(_subscribe(url, "chat:users")) == 0
        # And a browser has logged in (a user, and its session cookie)
        logged_in = project.manage("shell", "-c", LOG_IN, **env)
        assert logged_in.returncode == 0, logged_in.stdout + logged_in.stderr
        cookie = f"sessionid={logged_in.stdout.strip().splitlines()[-1]}"
        before = len(lines)
        # When the database server stops under the running stack
        stoppable_postgres.stop()
        # Then the next request and a new websocket subscription fail within 5 s, naming the fix
        started = time.monotonic()
        body = _http_query(url, "chat:users")
        assert time.monotonic() - started < 5
        assert body["status"] == "error", body
        assert "cannot be reached" in body["errorMessage"], body
        assert "python manage.py reactive_dev" in body["errorMessage"]
        # And a new websocket subscription is never answered with a server error: the log
        # reports the outage within 5 s, and the query gets its result once the server is back
        assert asyncio.run(_subscribe_across_outage(url, lines, stoppable_postgres)) == 1
        failures = [line for line in lines[before:] if "cannot be reached" in line]
        assert any("function failed function=chat:users" in line for line in failures)
        assert all("python manage.py reactive_dev" in line for line in failures), failures
        assert _http_query(url, "chat:users")["value"] == 1  # the pool connects again
        # And a session logged in before an outage stays logged in through it, while a
        # handshake with a session cookie during it is refused, in one line naming the fix
        assert asyncio.run(_cookies_across_outage(url, cookie, lines, stoppable_postgres)) == (
            "dana", "dana", "dana")
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert "\033[" not in text  # NO_COLOR
    # And once the server is stopped again, every command that needs it, reactive_dev itself
    # included, fails within 5 s (beyond Django's own start-up, seconds by itself on a loaded
    # machine) saying how to start it: not after the pool's 30 s wait
    stoppable_postgres.stop()
    for command in (("migrate",), ("reactive_run", "chat:list"), FIRST_QUERY,
                    ("reactive_dev", "--port", str(port))):
        started = time.monotonic()
        done = project.manage(*command, **env)
        elapsed = time.monotonic() - started
        output = done.stdout + done.stderr
        assert done.returncode != 0, (command, output)
        assert elapsed - startup < 5, f"{command}: {elapsed:.1f}s, start-up {startup:.1f}s"
        assert "cannot be reached" in output, (command, output)
        if command[0] == "reactive_dev":  # it uses DATABASE_URL's server and starts none
            assert "unset DATABASE_URL" in output, output
        else:
            assert "python manage.py reactive_dev" in output, (command, output)
        assert "error connecting in 'pool" not in output, (command, output)
        if command != FIRST_QUERY:  # commands print the message; user code gets the exception
            assert "Traceback" not in output, (command, output)


@contextlib.contextmanager
def _reactive_dev(project: FreshProject, port: int, env: dict[str, str]) -> Iterator[list[str]]:
    """``manage.py reactive_dev`` until the block ends (Ctrl-C); yields its output lines."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "reactive_dev", "--port", str(port)], cwd=project.root,
        env=project.env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines = _collect(proc)
    try:
        wait_for(lambda: any("dev stack ready" in line for line in lines) or proc.poll(),
                 timeout=60, what="reactive_dev to be ready")
        assert proc.poll() is None, "\n".join(lines)
        yield lines
    except BaseException:
        print("\n".join(lines))  # shown by pytest on failure
        raise
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def _http_query(url: str, path: str) -> Any:
    response = requests.post(f"{url}/api/query", json={"path": path, "args": {},
                                                        "format": "json"}, timeout=30)
    return response.json()


async def _subscribe(url: str, path: str) -> Any:
    async with SyncClient(url) as client:
        return await client.result(await client.subscribe(path), timeout=30)


async def _subscribe_across_outage(url: str, lines: list[str], server: PostgresServer) -> Any:
    """Subscribe to chat:users while ``server`` is stopped; once the log has reported the
    outage (within 5 s), start the server again and return the query's first result."""
    async with SyncClient(url) as client:
        seen = len(lines)
        query_id = await client.subscribe("chat:users")
        await _logged(lines, seen, "reactor round failed", "cannot be reached")
        assert query_id not in client.results and query_id not in client.errors
        server.start(60)  # in this thread: the server stops when the thread that started it ends
        return await client.result(query_id, timeout=30)


async def _cookies_across_outage(url: str, cookie: str, lines: list[str],
                                 server: PostgresServer) -> tuple[Any, Any, Any]:
    """With a session logged in by ``cookie`` open, stop ``server``; a handshake with the
    cookie is refused (HTTP 403) with one log line naming the fix, and the open session's
    re-check is skipped in one line, keeping its user. Start the server again; returns the
    open session's user before and after the outage, and that of a new session."""
    async with SyncClient(url, headers={"Cookie": cookie}) as held:
        before = await held.result(await held.subscribe("chat:me"), timeout=30)
        server.stop()
        seen = len(lines)
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with SyncClient(url, headers={"Cookie": cookie}):
                pass
        assert refused.value.response.status_code == 403
        await _logged(lines, seen, "session cookie could not be checked", "cannot be reached")
        await _logged(lines, seen, "cookie sessions not re-checked, kept", "cannot be reached")
        assert sum("could not be checked" in line for line in lines[seen:]) == 1
        server.start(60)  # in this thread: the server stops when the thread that started it ends
        # A query added now is answered as the session's identity is now; any Transition of
        # an earlier change of identity would have come before it.
        after = await held.result(await held.subscribe("chat:me"), timeout=30)
    async with SyncClient(url, headers={"Cookie": cookie}) as again:
        return before, after, await again.result(await again.subscribe("chat:me"), timeout=30)


async def _logged(lines: list[str], seen: int, *needles: str, within: float = 5) -> None:
    """Wait until a line after the first ``seen`` holds every one of ``needles``."""
    deadline = time.monotonic() + within
    while not any(all(n in line for n in needles) for line in lines[seen:]):
        assert time.monotonic() < deadline, f"no line with {needles} within {within}s"
        await asyncio.sleep(0.05)


def _collect(proc: subprocess.Popen[bytes]) -> list[str]:
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            lines.append(raw.decode(errors="replace").rstrip())

    threading.Thread(target=read, daemon=True).start()
    return lines


