"""Retry policies for scheduled jobs: the ``@retry`` opt-in and when a failed run goes again.

Without a policy a scheduled function runs at most once per job (mutations exactly once): a
failure, or an action whose worker died, ends the job as failed. With one, a job that failed
for any reason except a deliberate ``FunctionError`` is queued again after a capped
exponential backoff, until ``max_attempts`` runs have been made.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from reactive.exceptions import DefinitionError, FunctionError
from reactive.functions.definitions import FunctionDefinition
from reactive.types import FunctionKind

D = TypeVar("D", bound=FunctionDefinition[Any, Any])


@dataclass(frozen=True)
class RetryPolicy:
    """Run a failing job up to ``max_attempts`` times in all, waiting ``base_delay * 2**(n-1)``
    seconds (capped at ``max_delay``) after the n-th failure."""

    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise DefinitionError(
                "retry() needs max_attempts >= 1 and 0 <= base_delay <= max_delay; got "
                f"max_attempts={self.max_attempts}, base_delay={self.base_delay}, "
                f"max_delay={self.max_delay}."
            )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th (1-based) failed run."""
        return float(min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0)))


_policies: WeakKeyDictionary[FunctionDefinition[Any, Any], RetryPolicy] = WeakKeyDictionary()


def retry(
    *, max_attempts: int = 3, base_delay: float = 1.0, max_delay: float = 300.0
) -> Callable[[D], D]:
    """Opt a mutation or action into re-running its scheduled jobs when they fail.

    Apply it above the function decorator::

        @retry(max_attempts=5, base_delay=2)
        @internal_action
        def send_receipt(ctx, order_id: int) -> None: ...

    Re-runs follow unexpected exceptions, conflicts and lost workers, never ``FunctionError``.
    An action may then run more than once: make it idempotent. Raises DefinitionError at import
    for bad options or when applied to anything but a mutation or action definition.
    """
    policy = RetryPolicy(max_attempts, base_delay, max_delay)

    def apply(definition: D) -> D:
        if not isinstance(definition, FunctionDefinition):
            raise DefinitionError(
                f"@retry must be applied above @mutation/@action, not to {definition!r}."
            )
        if definition.kind is FunctionKind.QUERY:
            raise DefinitionError(
                f"@retry applies to mutations and actions, not query {definition!r}."
            )
        _policies[definition] = policy
        return definition

    return apply


def policy_for(definition: FunctionDefinition[Any, Any] | None) -> RetryPolicy | None:
    """The retry policy of ``definition``, or None when it did not opt in."""
    return _policies.get(definition) if definition is not None else None


def next_run(
    definition: FunctionDefinition[Any, Any] | None,
    attempts: int,
    error: BaseException | None,
    now: datetime.datetime,
) -> datetime.datetime | None:
    """When a job that failed on its ``attempts``-th run should run again, or None for never.

    ``error`` is what the run raised (None when its worker was lost).
    """
    policy = policy_for(definition)
    if policy is None or attempts >= policy.max_attempts or isinstance(error, FunctionError):
        return None
    return now + datetime.timedelta(seconds=policy.delay(attempts))
