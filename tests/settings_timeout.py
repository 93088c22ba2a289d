"""tests.settings with a 0.5 s limit on each SQL statement of a query function
(tests/live/test_query_timeout.py)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REACTIVE

REACTIVE = {**REACTIVE, "QUERY_STATEMENT_TIMEOUT": 0.5}
