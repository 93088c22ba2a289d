"""Day-one mistakes in a fresh ``startproject``, each reproduced in a throwaway project: every
one ends in a message that names the fix (issue #9), fast and without a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reactive.embedded.ports import free_port
from tests.support.fresh import ROUTED_ASGI, FreshProject, new_database
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


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> FreshProject:
    """A correctly wired project, migrated, shared by the tests that only run commands."""
    project = FreshProject(tmp_path_factory.mktemp("wired") / "site")
    project.wire()
    for command in (("makemigrations", "chat"), ("migrate", "--no-input")):
        done = project.manage(*command, DATABASE_URL=database_url)
        assert done.returncode == 0, done.stdout + done.stderr
    return project


def test_sqlite_database_is_reported_by_E002_naming_the_settings_file(
    project: FreshProject,
) -> None:
    # Given startproject's SQLite database and `reactive` installed
    # When the user migrates
    done = project.manage("migrate")
    # Then a system check names the fix, with no traceback (the trigger check used to crash)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "(reactive.E002)" in output and "mysite/settings.py" in output
    assert "reactive_dev" in output
    assert "Traceback" not in output and "to_regclass" not in output


def test_missing_asgi_application_and_urls_are_reported_naming_the_files(
    project: FreshProject, database_url: str,
) -> None:
    # Given reactive installed on PostgreSQL, and nothing else wired
    project.append_settings("import dj_database_url\n"
                            "DATABASES = {'default': dj_database_url.config()}")
    # When the user runs the checks
    done = project.manage("check", DATABASE_URL=database_url)
    # Then W050 asks for ASGI_APPLICATION in settings.py and W052 for the URLs in urls.py
    assert "(reactive.W050)" in done.stderr
    assert "ASGI_APPLICATION = 'mysite.asgi.application'" in done.stderr
    assert "(reactive.W052)" in done.stderr
    assert 'mysite/urls.py add path("", include("reactive.urls"))' in done.stderr
    # And the API mounted under a prefix is W053
    project.write("mysite/urls.py", "from django.urls import include, path\n"
                  "urlpatterns = [path('backend/', include('reactive.urls'))]\n")
    below = project.manage("check", DATABASE_URL=database_url)
    assert "(reactive.W053)" in below.stderr and "'backend/'" in below.stderr


FIRST_QUERY = ("shell", "-c", "from chat.models import Message; Message.objects.count()")


@pytest.mark.parametrize("command", [("migrate",), ("reactive_run", "chat:list"), FIRST_QUERY],
                         ids=["migrate", "reactive_run", "first-query"])
def test_stopped_database_is_reported_within_5s_with_the_dev_stack_hint(
    project: FreshProject, startup: float, command: tuple[str, ...],
) -> None:
    # Given a wired project whose database server is not running
    project.wire()
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/reactive"
    # When the user runs a command that needs it (or code's first query: a request's, say)
    started = time.monotonic()
    done = project.manage(*command, DATABASE_URL=closed)
    elapsed = time.monotonic() - started
    # Then it fails within 5 s (beyond Django's own start-up, which on a loaded machine is
    # seconds by itself), saying to start reactive_dev; not after the pool's 30 s wait
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert elapsed - startup < 5, f"took {elapsed:.1f}s, start-up alone {startup:.1f}s"
    assert "cannot be reached" in output and "python manage.py reactive_dev" in output
    assert "error connecting in 'pool" not in output
    if command != FIRST_QUERY:  # commands print the message; user code gets the exception
        assert "Traceback" not in output


def test_routing_daphne_celery_and_origin_mistakes_each_name_their_fix(
    project: FreshProject, database_url: str,
) -> None:
    # Given a project wired for reactive except its asgi.py (startproject's, HTTP only), with
    # daphne appended after staticfiles, a celery.py that never autodiscovers, and origins
    # the browser's websocket will not match
    project.wire(asgi=False)
    project.append_settings('INSTALLED_APPS.remove("daphne")\nINSTALLED_APPS.append("daphne")\n'
                            "REACTIVE = {'CORS_ALLOWED_ORIGINS': ['http://app.example:5173', "
                            "'http://localhost:3000/']}")
    project.write("mysite/celery.py", "from celery import Celery\n\napp = Celery('mysite')\n"
                  "app.config_from_object('django.conf:settings', namespace='CELERY')\n")
    # When the user runs the checks
    done = project.manage("check", DATABASE_URL=database_url)
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
    project.write("mysite/asgi.py", ROUTED_ASGI)
    project.append("mysite/celery.py", "app.autodiscover_tasks()")
    project.append_settings('INSTALLED_APPS.remove("daphne")\nINSTALLED_APPS.insert(0, "daphne")\n'
                            "REACTIVE = {}")
    fixed = project.manage("check", DATABASE_URL=database_url)
    assert fixed.returncode == 0, fixed.stderr
    assert "no issues" in fixed.stdout


def test_function_name_typo_suggests_the_right_name(migrated: FreshProject,
                                                    database_url: str) -> None:
    done = migrated.manage("reactive_run", "chat:lst", '{"channel": "general"}',
                           DATABASE_URL=database_url)
    assert done.returncode == 1
    assert "Could not find public function for 'chat:lst'. Did you mean 'chat:list'?" in done.stderr


def test_argument_typo_suggests_the_right_argument(migrated: FreshProject,
                                                  database_url: str) -> None:
    done = migrated.manage("reactive_run", "chat:send", '{"channel": "g", "bodyy": "hi"}',
                           DATABASE_URL=database_url)
    assert done.returncode == 1
    assert "bodyy: unknown argument, did you mean 'body'? (the function takes channel, body)" \
        in done.stderr


def test_convex_error_message_is_json(migrated: FreshProject, database_url: str) -> None:
    done = migrated.manage("reactive_run", "chat:send", '{"channel": "g", "body": " "}',
                           DATABASE_URL=database_url)
    assert done.returncode == 1
    assert 'ConvexError: {"code":"EMPTY"}' in done.stderr and "'code'" not in done.stderr


def test_negative_limit_from_the_guide_is_a_clear_argument_error(
    migrated: FreshProject, database_url: str,
) -> None:
    done = migrated.manage("reactive_run", "chat:list", '{"channel": "g", "limit": -1}',
                           DATABASE_URL=database_url)
    assert done.returncode == 1
    assert "limit: Input should be greater than or equal to 1 (got -1)" in done.stderr
    assert "Negative indexing" not in done.stderr


def test_query_that_writes_prints_the_message_without_a_traceback(
    migrated: FreshProject, database_url: str,
) -> None:
    done = migrated.manage("reactive_run", "chat:tidy", DATABASE_URL=database_url)
    assert done.returncode == 1
    assert "ReadOnly" in done.stderr or "read-only" in done.stderr.lower()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 3, done.stderr


def test_function_defined_twice_in_a_module_fails_at_import_naming_both_lines(
    project: FreshProject, database_url: str,
) -> None:
    # Given a functions.py that defines `send` twice
    project.wire()
    project.append("chat/functions.py", "@mutation\ndef send(ctx: MutationCtx, text: str) -> str:"
                   "\n    return text\n")
    # When anything starts Django
    done = project.manage("check", DATABASE_URL=database_url)
    # Then the import fails naming both definitions
    assert done.returncode != 0
    lines = re.findall(r"chat/functions\.py:(\d+)", done.stderr)
    assert "defined twice in module chat.functions" in done.stderr
    assert len(set(lines)) == 2, done.stderr


def test_reactive_dev_says_it_skips_celery_without_celery_py(
    project: FreshProject, postgres_url: str, redis_url: str,
) -> None:
    # Given a wired project without mysite/celery.py, on running PostgreSQL and Redis (an
    # empty database of its own: chat has no migrations yet)
    project.wire()
    database_url = new_database(postgres_url)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "reactive_dev", "--port", str(port)], cwd=project.root,
        env=project.env(DATABASE_URL=database_url, REDIS_URL=redis_url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    lines = _collect(proc)
    try:
        # When the stack is ready
        wait_for(lambda: any("dev stack ready" in line for line in lines), timeout=60,
                 what="reactive_dev to be ready")
    except BaseException:
        print("\n".join(lines))  # shown by pytest on failure
        raise
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    # Then it said what it runs, what it skips and why, one prefix per process
    text = "\n".join(lines)
    assert "dev | runs   asgi: daphne serving mysite.asgi:application" in text
    assert ("dev | skips  Celery worker and beat: there is no mysite/celery.py" in text
            and "crons will not run" in text), text
    assert "migrate | " in text
    # And a model without migrations is named with the command that fixes it, no traceback
    assert "chat.Message has no table; run python manage.py makemigrations chat" in text
    assert "Traceback" not in text
    assert "\033[" not in text  # NO_COLOR


def _collect(proc: subprocess.Popen[bytes]) -> list[str]:
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            lines.append(raw.decode(errors="replace").rstrip())

    threading.Thread(target=read, daemon=True).start()
    return lines


