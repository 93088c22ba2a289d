"""The test project's own websocket route, next to the sync protocol's: ``/echo/`` answers each
text frame with ``<username or anonymous>: <text>`` (a Channels consumer behind
``AuthMiddlewareStack``, as a project's chat or notifications socket would be)."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
        user = self.scope.get("user")
        name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        await self.send(text_data=f"{name}: {text_data}")


websocket_routes = [path("echo/", EchoConsumer.as_asgi())]
