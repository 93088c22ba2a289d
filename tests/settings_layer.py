"""tests.settings plus a Redis channel layer configured as docs/guides/deployment.md says
(socket_timeout None), default websocket limits: for the idle-session test's server."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
    }
}
