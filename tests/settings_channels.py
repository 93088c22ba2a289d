"""tests.settings with the channel layer named by ``REACTIVE_TEST_CHANNEL_LAYER``, each written
as its own documentation writes it: ``none`` (no CHANNEL_LAYERS), ``memory`` (Channels'
in-memory layer), ``redis-hosts`` (channels-redis README: host tuples), ``redis-url`` (a URL
string), ``redis-unreachable`` (a wrong address); ``socket_timeout`` is left at its default.
For the servers the channel-layer tests start."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from tests.settings import *  # noqa: F403
from tests.settings import REDIS_URL

_LAYER = os.environ.get("REACTIVE_TEST_CHANNEL_LAYER", "none")
_redis = urlsplit(REDIS_URL)
_LAYERS: dict[str, dict[str, Any]] = {
    "memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "redis-hosts": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [(_redis.hostname, _redis.port)]}},
    "redis-url": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                  "CONFIG": {"hosts": [REDIS_URL]}},
    # A wrong address: nothing listens on port 1.
    "redis-unreachable": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": [("127.0.0.1", 1)]}},
}
if _LAYER != "none":
    CHANNEL_LAYERS = {"default": _LAYERS[_LAYER]}
