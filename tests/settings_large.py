"""tests.settings with a 9 MiB limit on one live query's result: an 8 MiB result passes, a
10 MiB one fails (tests/live/test_large_results.py)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REACTIVE

REACTIVE = {**REACTIVE, "WEBSOCKET_MAX_RESULT_BYTES": 9 * 1024 * 1024}
