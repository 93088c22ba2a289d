"""HTTP as in tests.asgi; websockets: our sync protocol (``BENCH_STACK=ours``) or the DCRF
consumer at ``/dcrf/`` (``BENCH_STACK=dcrf``). Each server process serves one stack only, so
neither pays for the other's hooks."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer_dcrf.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import path

django_asgi_app = get_asgi_application()

if settings.STACK == "dcrf":
    from bench.peer_dcrf.consumer import MessageConsumer

    websocket_urlpatterns = [path("dcrf/", MessageConsumer.as_asgi())]
else:
    from reactive.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))}
)
