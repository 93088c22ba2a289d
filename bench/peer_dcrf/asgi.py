"""HTTP as in tests.asgi; websockets: our sync protocol (``BENCH_STACK=ours``), routed as
docs/getting-started.md says (``sync_websocket``), or the DCRF consumer at ``/dcrf/``
(``BENCH_STACK=dcrf``) behind Channels' ``AuthMiddlewareStack(URLRouter(...))``, as DCRF's
docs route it. Each server process serves one stack only, so neither pays for the other's
hooks."""

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

    websocket = AuthMiddlewareStack(URLRouter([path("dcrf/", MessageConsumer.as_asgi())]))
else:
    from reactive.routing import sync_websocket

    websocket = sync_websocket()

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket})
