"""tests.settings with small websocket limits, a 1 s Ping interval and a Redis channel layer:
for servers that the bad-input and heartbeat tests start (``DJANGO_SETTINGS_MODULE``)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REACTIVE, REDIS_URL

REACTIVE = {
    **REACTIVE,
    "WEBSOCKET_MAX_MESSAGE_BYTES": 64 * 1024,
    "WEBSOCKET_MAX_QUERIES": 500,
    "WEBSOCKET_MAX_MESSAGES_PER_SECOND": 40.0,  # bursts of 200
    "WEBSOCKET_PING_INTERVAL": 1.0,
    "WEBSOCKET_ALLOWED_ORIGINS": ["http://allowed.example"],
}

# As deployed (docs/guides/deployment.md): a Redis channel layer, socket_timeout=None against the
# redis-py / channels-redis 5 s timeout collision.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
    }
}
