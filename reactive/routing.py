"""Where a project's ASGI application sends websockets and uploads.

``sync_websocket()`` is the whole ``"websocket"`` application: the sync protocol (npm clients
at ``<url>/api/<client version>/sync``, the Python client at ``/api/sync``) with nothing of
Channels per connection; give it ``fallback`` for the project's own websocket routes.
``UploadGuard`` refuses oversized or unauthorised uploads before their body is read::

    application = ProtocolTypeRouter({
        "http": reactive.routing.UploadGuard(get_asgi_application()),
        "websocket": reactive.routing.sync_websocket(),
        # or: sync_websocket(fallback=AuthMiddlewareStack(URLRouter(myapp_routes)))
    })

``websocket_urlpatterns`` routes the same endpoint below Channels' routers, as earlier
versions documented: ``AuthMiddlewareStack(URLRouter(websocket_urlpatterns))`` still works,
at the cost of that middleware per connection.
"""

from __future__ import annotations

from django.urls import re_path

from reactive.http.guard import UploadGuard
from reactive.live.endpoint import SYNC_PATH, Application, SyncEndpoint, SyncRouter

__all__ = ["UploadGuard", "sync_websocket", "websocket_urlpatterns"]


def sync_websocket(fallback: Application | None = None) -> SyncRouter:
    """The ``"websocket"`` application of a project: the sync protocol's paths are served
    directly; any other websocket goes to ``fallback`` (say, ``AuthMiddlewareStack(URLRouter(
    your_routes))``), or is refused with HTTP 403 when there is none."""
    return SyncRouter(fallback)


# Channels' URLRouter takes ASGI applications where Django's patterns expect views.
websocket_urlpatterns = [re_path(SYNC_PATH, SyncEndpoint())]  # type: ignore[arg-type]
