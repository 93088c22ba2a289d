"""Functions for the Sentry tests: named `testapp/observe:<name>`."""

from __future__ import annotations

import logging
import time
from typing import Any

from reactive import MutationCtx, QueryCtx, mutation, query

logger = logging.getLogger("tests.testapp.observe")


@query
def crash_with(ctx: QueryCtx, email: str, profile: dict[str, Any], tags: list[str]) -> None:
    secret = email  # a local holding an argument's value: never sent either
    raise ValueError(f"no profile for {len(secret)} characters")


@mutation
def complain(ctx: MutationCtx, email: str, count: int) -> int:
    logger.error("complaint count=%d", count)
    return count


@query
def slow_failure(ctx: QueryCtx, seconds: float) -> None:
    """Fails after ``seconds``: slow enough to top the health page's slowest functions."""
    time.sleep(seconds)
    raise ValueError("failed slowly")
