"""The test project's ASGI application, routed as docs/getting-started.md says: uploads guarded,
the sync protocol served by ``reactive.routing.sync_websocket``, and the project's own
websocket routes (an echo consumer behind Channels' ``AuthMiddlewareStack``) as its fallback.

``REACTIVE_TEST_ROUTING=channels`` routes the sync protocol as earlier versions documented,
``AuthMiddlewareStack(URLRouter(websocket_urlpatterns))``, which still works."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from reactive.routing import UploadGuard, sync_websocket, websocket_urlpatterns  # noqa: E402
from tests.testapp.consumers import websocket_routes  # noqa: E402

if os.environ.get("REACTIVE_TEST_ROUTING") == "channels":
    websocket = AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, *websocket_routes]))
else:
    websocket = sync_websocket(fallback=AuthMiddlewareStack(URLRouter(websocket_routes)))

application = ProtocolTypeRouter({"http": UploadGuard(django_asgi_app), "websocket": websocket})

if os.environ.get("REACTIVE_TEST_GC_FREEZE"):  # docs/guides/deployment.md's recipe (benchmarks)
    import gc

    gc.collect()
    gc.freeze()
