"""tests.settings, plus the write endpoint both stacks share and, for the peer, DCRF's app and
a channel layer (``BENCH_LAYER``: ``memory``, or ``redis`` at ``REDIS_URL`` with
``socket_timeout=None`` as DESIGN.md section 8 says). ``BENCH_STACK`` (``ours`` or ``dcrf``)
picks the websocket app in bench.peer_dcrf.asgi."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, REDIS_URL

ROOT_URLCONF = "bench.peer_dcrf.urls"
ASGI_APPLICATION = "bench.peer_dcrf.asgi.application"
STACK = os.environ.get("BENCH_STACK", "ours")

if STACK == "dcrf":
    INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework"]
    if os.environ.get("BENCH_LAYER", "memory") == "redis":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
            }
        }
    else:
        CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
