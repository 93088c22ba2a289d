"""System checks of a project's wiring (``reactive.E051``-``E059``, ``W050``-``W059``): the
ASGI application and its websocket route, INSTALLED_APPS order, URLs, Celery and origins."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.handlers.asgi import ASGIHandler
from django.urls import URLResolver, get_resolver
from django.urls.exceptions import Resolver404
from django.utils.module_loading import import_string

ROUTING_SNIPPET = (
    'application = ProtocolTypeRouter({"http": get_asgi_application(), "websocket": '
    "reactive.routing.sync_websocket()})"
)
_UNKNOWN = object()  # an application we cannot see into: assume it is fine


@register(Tags.compatibility)
def check_asgi(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W050: no ASGI_APPLICATION; E053: it does not import; E051/E052: it has no
    websocket route, or one without ``reactive.routing``."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return [Warning(
            "ASGI_APPLICATION is not set, so nothing serves the websocket that live queries "
            "use (the HTTP API still works).",
            hint=f"In {settings_file()} add ASGI_APPLICATION = "
            f"'{_project_package()}.asgi.application' and route the websocket in that asgi.py: "
            f"{ROUTING_SNIPPET}. See docs/getting-started.md.",
            id="reactive.W050",
        )]
    try:
        application = import_string(str(path))
    except Exception as exc:
        return [Error(
            f"ASGI_APPLICATION = {path!r} cannot be imported: {type(exc).__name__}: {exc}",
            hint=f"Fix ASGI_APPLICATION in {settings_file()}: '<module>.<attribute>', "
            "such as 'mysite.asgi.application'.",
            id="reactive.E053",
        )]
    websocket = _websocket_app(application)
    asgi_file = _module_file(str(path).rpartition(".")[0])
    if websocket is None:
        return [Error(
            f"The ASGI application {path!r} serves HTTP only: websocket connections fail "
            "(\"Django can only handle ASGI/HTTP connections\") and clients retry forever.",
            hint=f"In {asgi_file} route the websocket to reactive.routing: {ROUTING_SNIPPET}. "
            "See docs/getting-started.md.",
            id="reactive.E051",
        )]
    if websocket is not _UNKNOWN and not _routes_to_sync_endpoint(websocket):
        return [Error(
            f"The websocket router of {path!r} has no route to django-reactivity's sync "
            "protocol, so clients cannot subscribe to live queries.",
            hint=f"In {asgi_file} make the websocket application "
            "reactive.routing.sync_websocket(fallback=<your router>), or add "
            "reactive.routing.websocket_urlpatterns to your URLRouter.",
            id="reactive.E052",
        )]
    return []


@register(Tags.compatibility)
def check_installed_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W051: ``daphne`` after ``django.contrib.staticfiles`` (runserver stays WSGI).

    Only daphne's place matters: its ``runserver`` must shadow staticfiles' one. Where
    ``reactive`` and ``channels`` stand among the apps makes no difference.
    """
    apps = list(settings.INSTALLED_APPS)
    staticfiles = "django.contrib.staticfiles"
    if "daphne" not in apps or staticfiles not in apps:
        return []
    if apps.index("daphne") < apps.index(staticfiles):
        return []
    return [Warning(
        "'daphne' comes after 'django.contrib.staticfiles' in INSTALLED_APPS, so runserver "
        "is Django's WSGI server and refuses the websocket.",
        hint=f"In {settings_file()} move 'daphne' to the top of INSTALLED_APPS.",
        id="reactive.W051",
    )]


@register(Tags.urls)
def check_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W052: ``reactive.urls`` is not included; W053: included below the root."""
    resolver = get_resolver()
    try:
        match = resolver.resolve("/api/query")
    except Resolver404:
        match = None
    if match is not None and match.app_name == "reactive":
        return []
    urls_file = _module_file(str(settings.ROOT_URLCONF))
    prefix = _reactive_prefix(resolver.url_patterns, "")
    if prefix is None:
        return [Warning(
            "reactive.urls is not included in ROOT_URLCONF: the HTTP API (/api/query, "
            "/api/mutation, ...) answers 404.",
            hint=f"In {urls_file} add path(\"\", include(\"reactive.urls\")) to urlpatterns.",
            id="reactive.W052",
        )]
    return [Warning(
        f"reactive.urls is included under '{prefix}', but the official clients call "
        "<deployment URL>/api/query and connect to <deployment URL>/api/<version>/sync.",
        hint=f"In {urls_file} include it at the root: path(\"\", include(\"reactive.urls\")).",
        id="reactive.W053",
    )]


@register(Tags.compatibility)
def check_celery(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W054: the project's Celery app does not find ``reactive.tasks``; W057: crons
    are declared but the project has no Celery app to run them."""
    from reactive.scheduling import crons

    module = celery_module()
    if module is None:
        if len(crons.registry) == 0:
            return []
        return [Warning(
            f"{len(crons.registry)} cron(s) are declared but the project has no Celery app, so "
            "crons and scheduled functions will not run.",
            hint=f"Add {_project_package()}/celery.py (Celery's standard Django setup, with "
            "app.autodiscover_tasks()). See docs/guides/scheduling.md.",
            id="reactive.W057",
        )]
    app = _celery_app(module)
    if app is None:
        return []
    if _discovers_reactive_tasks(app):
        return []
    return [Warning(
        f"The Celery app in {module.__name__} does not register django-reactivity's tasks, so "
        "workers refuse scheduled functions (\"unregistered task\") and beat runs no crons.",
        hint=f"In {_module_file(module.__name__)} call app.autodiscover_tasks() after "
        "app.config_from_object('django.conf:settings', namespace='CELERY').",
        id="reactive.W054",
    )]


@register(Tags.security, Tags.compatibility)
def check_origins(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W055: an origin the HTTP API allows but the websocket refuses; W056: an
    origin that can never match a browser's ``Origin`` header."""
    from reactive.conf import reactive_settings, validate
    from reactive.live.origin import origin_allowed

    if validate(getattr(settings, "REACTIVE", None)):
        return []  # reactive.E001 reports it
    config = reactive_settings()
    found: list[CheckMessage] = []
    for key in ("CORS_ALLOWED_ORIGINS", "WEBSOCKET_ALLOWED_ORIGINS"):
        for origin in getattr(config, key):
            if not _is_origin(origin):
                found.append(Warning(
                    f"REACTIVE['{key}'] holds {origin!r}, which no browser sends: an origin is "
                    "scheme://host[:port], without a path or a trailing slash.",
                    hint=f"In {settings_file()} write it as e.g. 'http://localhost:5173'.",
                    id="reactive.W056",
                ))
    for origin in config.CORS_ALLOWED_ORIGINS:
        scope = {"headers": [(b"origin", origin.encode("latin-1", "replace"))]}
        if _is_origin(origin) and not origin_allowed(scope):
            found.append(Warning(
                f"REACTIVE['CORS_ALLOWED_ORIGINS'] allows {origin!r} to call the HTTP API, but "
                "the websocket refuses that origin (it is not in WEBSOCKET_ALLOWED_ORIGINS, "
                "and only the server's own scheme, host and port pass without it), so live "
                "queries from that page fail.",
                hint=f"In {settings_file()} add {origin!r} to "
                "REACTIVE['WEBSOCKET_ALLOWED_ORIGINS'].",
                id="reactive.W055",
            ))
    return found


def celery_module() -> ModuleType | None:
    """The project's ``<settings package>/celery.py`` (Celery's Django layout), if any."""
    name = f"{_project_package()}.celery"
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    return importlib.import_module(name)


def _celery_app(module: ModuleType) -> Any:
    from celery import Celery

    return next((v for v in vars(module).values() if isinstance(v, Celery)), None)


def _discovers_reactive_tasks(app: Any) -> bool:
    """Whether a worker of ``app`` will import ``reactive.tasks``: listed in ``imports`` or
    ``include``, or found by a pending ``app.autodiscover_tasks()`` (without a package list
    that leaves ``reactive`` out), or already imported (``autodiscover_tasks(force=True)``).

    Inspects what autodiscovery registered instead of running it: running it here would run
    Celery's Django fixup, which runs the system checks again.
    """
    from celery.signals import import_modules

    listed = {*(app.conf.imports or ()), *(app.conf.include or ())}
    if listed & {"reactive.tasks", "reactive.scheduling.tasks"}:
        return True
    for (_, sender), receiver in import_modules.receivers:
        fun = getattr(receiver, "fun", None)
        if sender == id(app) and getattr(fun, "__name__", "") == "_autodiscover_tasks":
            packages = (getattr(receiver, "args", None) or (None,))[0]
            return packages is None or callable(packages) or "reactive" in packages
    return "reactive.scheduling.tasks" in sys.modules


def _websocket_app(application: Any) -> Any:
    """The websocket branch of a Channels ProtocolTypeRouter; None when there is none;
    ``_UNKNOWN`` for an application we cannot see into."""
    if isinstance(application, ASGIHandler):
        return None
    mapping = getattr(application, "application_mapping", None)
    if not isinstance(mapping, dict):
        return _UNKNOWN
    return mapping.get("websocket")


def _routes_to_sync_endpoint(app: Any, depth: int = 0) -> bool:
    """True when the (middleware-wrapped, possibly nested) router reaches the sync endpoint,
    or when some layer cannot be seen into (we only report what we can see)."""
    from reactive.live.endpoint import SyncEndpoint, SyncRouter

    if depth > 20 or isinstance(app, SyncEndpoint | SyncRouter):
        return True
    if isinstance(getattr(app, "consumer_class", None), type):
        return False  # a Channels consumer: some other websocket
    routes = getattr(app, "routes", None)
    if isinstance(routes, list | tuple):
        return any(_routes_to_sync_endpoint(r.callback, depth + 1) for r in routes)
    for attribute in ("inner", "application", "app"):
        inner = getattr(app, attribute, None)
        if inner is not None:
            return _routes_to_sync_endpoint(inner, depth + 1)
    return True


def _reactive_prefix(patterns: list[Any], prefix: str) -> str | None:
    """The route prefix under which ``reactive.urls`` is included, or None."""
    for pattern in patterns:
        if not isinstance(pattern, URLResolver):
            continue
        here = prefix + str(pattern.pattern)
        module = pattern.urlconf_module
        if getattr(module, "__name__", module) == "reactive.urls":
            return here
        found = _reactive_prefix(list(pattern.url_patterns), here)
        if found is not None:
            return found
    return None


def _is_origin(origin: str) -> bool:
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme in {"http", "https"} and bool(rest) and "/" not in rest


def _project_package() -> str:
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    return module.rpartition(".")[0] or "<project>"


def settings_file() -> str:
    return _module_file(os.environ.get("DJANGO_SETTINGS_MODULE", ""), fallback="settings.py")


def _module_file(dotted: str, fallback: str | None = None) -> str:
    """The source file of a module, relative to the working directory when below it."""
    try:
        spec = importlib.util.find_spec(dotted) if dotted else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return fallback or dotted.replace(".", "/") + ".py"
    path = Path(spec.origin)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
