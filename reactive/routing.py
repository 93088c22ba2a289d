"""Websocket routes of the sync protocol, for a Channels ``ProtocolTypeRouter``, and the HTTP
``UploadGuard`` that refuses oversized or unauthorised uploads before their body is read.

npm clients connect to ``<url>/api/<client version>/sync``, the Python client to
``/api/sync``; a doubled leading slash (a deployment URL ending in ``/``) is tolerated::

    application = ProtocolTypeRouter({
        "http": reactive.routing.UploadGuard(get_asgi_application()),
        "websocket": AuthMiddlewareStack(URLRouter(reactive.routing.websocket_urlpatterns)),
    })
"""

from __future__ import annotations

from django.urls import re_path

from reactive.http.guard import UploadGuard
from reactive.live.consumer import SyncConsumer

__all__ = ["UploadGuard", "websocket_urlpatterns"]

websocket_urlpatterns = [
    re_path(r"^/*api/(?:[^/]+/)?sync$", SyncConsumer.as_asgi()),
]
