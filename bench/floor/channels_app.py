"""The Channels floor: the test project's Django settings and HTTP, and at the sync path a bare
``AsyncWebsocketConsumer`` (accept, ignore every frame) behind Channels' standard
``AuthMiddlewareStack(URLRouter(...))``, as any Channels project routes its consumers."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_asgi_app = get_asgi_application()


class IdleConsumer(AsyncWebsocketConsumer):
    """Accepts (the base class's ``connect``) and drops whatever arrives."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None


application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter([
        re_path(r"^api/[^/]+/sync$", IdleConsumer.as_asgi()),
    ])),
})
