"""Websocket routes of the sync protocol, for a Channels ``ProtocolTypeRouter``.

npm clients connect to ``<url>/api/<client version>/sync``, the Python client to
``/api/sync``; a doubled leading slash (a deployment URL ending in ``/``) is tolerated::

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter(reactive.routing.websocket_urlpatterns)),
    })
"""

from __future__ import annotations

from django.urls import re_path

from reactive.live.consumer import SyncConsumer

websocket_urlpatterns = [
    re_path(r"^/*api/(?:[^/]+/)?sync$", SyncConsumer.as_asgi()),
]
