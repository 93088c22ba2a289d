"""ASGI entry point: HTTP through Django (the reactive HTTP API included; uploads checked by
UploadGuard before their body is read) and the Convex sync protocol on /api/<version>/sync and
/api/sync."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()
if settings.DEBUG:  # serve the page's JS and the Convex bundle in development
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from reactive.routing import UploadGuard, sync_websocket  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": UploadGuard(django_asgi_app),
        "websocket": sync_websocket(),
    }
)
