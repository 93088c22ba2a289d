"""A throwaway Django project made by ``django-admin startproject``, run with this venv's
Python in child processes, as a new user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

OUR_ENV = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}

ROUTED_ASGI = '''\
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from reactive.routing import sync_websocket  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": sync_websocket(),
})
'''

# How earlier versions documented it; still supported.
CHANNELS_ROUTED_ASGI = '''\
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from reactive.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})
'''

URLS = '''\
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("reactive.urls")),
]
'''

MODELS = '''\
from django.db import models


class Message(models.Model):
    channel = models.CharField(max_length=50)
    body = models.TextField()
'''

FUNCTIONS = '''\
from typing import Annotated

from pydantic import Field

from reactive import FunctionError, MutationCtx, QueryCtx, mutation, query

from .models import Message


@query
def list(ctx: QueryCtx, channel: str, limit: Annotated[int, Field(ge=1, le=100)] = 50):
    return Message.objects.filter(channel=channel).order_by("-id")[:limit]


@mutation
def send(ctx: MutationCtx, channel: str, body: str) -> str:
    if not body.strip():
        raise FunctionError({"code": "EMPTY"})
    return str(Message.objects.create(channel=channel, body=body).pk)


@query
def tidy(ctx: QueryCtx) -> int:
    return Message.objects.all().delete()[0]  # a query that writes
'''


# Runs manage.py commands one after another in one process, each as manage.py would (Django's
# ManagementUtility), with file descriptors 1 and 2 sent to files of its own, so its output,
# its log lines included, and exit status are its alone. argv: the JSON list of commands.
MANY = """\
import importlib, json, os, sys, tempfile, traceback
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
from django.core.management import ManagementUtility

results = []
for command in json.loads(sys.argv[1]):
    importlib.invalidate_caches()  # makemigrations may have written modules
    saved, files = [os.dup(1), os.dup(2)], [tempfile.TemporaryFile() for _ in range(2)]
    for fd, file in zip((1, 2), files):
        os.dup2(file.fileno(), fd)
    code = 0
    try:
        ManagementUtility(["manage.py", *command]).execute()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, copy in zip((1, 2), saved):
        os.dup2(copy, fd)
        os.close(copy)
    out, err = [(f.seek(0), f.read().decode(errors="replace"))[1] for f in files]
    results.append({"returncode": code, "stdout": out, "stderr": err})
print(json.dumps(results))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the suite's own settings: what a new user's shell
    has (and no colour codes in output)."""
    env = {k: v for k, v in os.environ.items() if k not in OUR_ENV}
    return {**env, "NO_COLOR": "1", **extra}


def new_database(server_url: str) -> str:
    """Create an empty database on the server at ``server_url``; return its URL."""
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


class FreshProject:
    """``startproject mysite`` in ``root`` (or a copy of ``template``, another fresh project:
    the same files, one process start cheaper); ``manage()`` runs its manage.py."""

    def __init__(self, root: Path, template: FreshProject | None = None) -> None:
        self.root = root
        if template is not None:
            shutil.copytree(template.root, root)
            return
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                       check=True, env=self.env(), timeout=60)
        self.append_settings('INSTALLED_APPS.append("reactive")')

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**extra)

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def append(self, relative: str, text: str) -> None:
        with (self.root / relative).open("a") as file:
            file.write("\n" + text + "\n")

    def append_settings(self, text: str) -> None:
        self.append("mysite/settings.py", text)

    def manage(
        self, *args: str, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=self.root,
                              env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def manage_many(
        self, *commands: tuple[str, ...], timeout: float = 120, **env: str
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run manage.py ``commands`` in order in one process (one Django start-up instead of
        one each), each through Django's ManagementUtility as manage.py runs it, with output
        and exit status of its own. For commands whose outcome does not depend on a new
        process: not for start-up errors, nor for timing one."""
        done = subprocess.run([sys.executable, "-c", MANY, json.dumps(commands)], cwd=self.root,
                              env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        results = json.loads(done.stdout.splitlines()[-1])
        return [subprocess.CompletedProcess(["manage.py", *command], r["returncode"],
                                            r["stdout"], r["stderr"])
                for command, r in zip(commands, results, strict=True)]

    def wire(self, *, asgi: bool = True) -> None:
        """Everything the guide asks for: PostgreSQL from DATABASE_URL (or the dev stack), the
        routed ASGI application, the API at the root, and a ``chat`` app with functions."""
        self.append_settings(
            "from reactive.embedded import service_url\n"
            'DATABASES = {"default": service_url.database(BASE_DIR / ".reactive")}\n'
            'ASGI_APPLICATION = "mysite.asgi.application"\n'
            'INSTALLED_APPS.insert(0, "daphne")\n'
            'INSTALLED_APPS.append("chat")'
        )
        if asgi:
            self.write("mysite/asgi.py", ROUTED_ASGI)
        self.write("mysite/urls.py", URLS)
        self.write("chat/__init__.py", "")
        self.write("chat/models.py", MODELS)
        self.write("chat/functions.py", FUNCTIONS)
        self.write("chat/migrations/__init__.py", "")
