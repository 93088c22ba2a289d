"""A test kit for projects using django-reactivity, against the real database.

::

    from reactive.testing import Caller, drain_jobs

    @pytest.mark.django_db(transaction=True)
    def test_send_shows_up(django_user_model):
        ada = Caller.for_user(django_user_model.objects.create_user("ada"))
        with ada.subscribe("chat:list", channel="general") as messages:
            assert messages.value == []
            ada.mutation("chat:send", channel="general", body="hi")
            assert [m["body"] for m in messages.next()] == ["hi"]
        drain_jobs()  # run every scheduled job that is due, in this process

Subscriptions use the same machinery as the server: change capture, read sets and a
re-run at a fresh snapshot, so a test sees exactly what a client would. Tests need
``django_db(transaction=True)``: functions open their own transactions.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from reactive import values
from reactive.capture import triggers
from reactive.capture.matcher import Matcher
from reactive.exceptions import FunctionError
from reactive.functions.runtime import Call, Outcome, Runtime, runtime
from reactive.functions.transaction import run_read_only
from reactive.types import ADMIN, ANONYMOUS, FunctionKind, Identity


class Caller:
    """Calls functions as one identity: a user, the admin, or anonymous."""

    def __init__(self, identity: Identity = ANONYMOUS, functions: Runtime = runtime) -> None:
        self.identity = identity
        self.runtime = functions

    @classmethod
    def for_user(cls, user: Any) -> Caller:
        return cls(Identity(user_id=str(user.pk)))

    @classmethod
    def admin(cls) -> Caller:
        return cls(ADMIN)

    def query(self, name: str, /, **args: Any) -> Any:
        return self._call(name, args, FunctionKind.QUERY)

    def mutation(self, name: str, /, **args: Any) -> Any:
        return self._call(name, args, FunctionKind.MUTATION)

    def action(self, name: str, /, **args: Any) -> Any:
        return self._call(name, args, FunctionKind.ACTION)

    def _call(self, name: str, args: dict[str, Any], kind: FunctionKind) -> Any:
        """As a client would: public functions only (unless admin); errors raise."""
        return self.runtime.run(name, args, self.identity, internal=self.identity.is_admin,
                                expect=kind)

    @contextmanager
    def subscribe(self, name: str, /, **args: Any) -> Iterator[Subscription]:
        """A live query: ``.value`` now, ``.next()`` waits for the next changed result."""
        subscription = Subscription(self.runtime, name, args, self.identity)
        try:
            yield subscription
        finally:
            subscription.close()


class Subscription:
    """One live query, re-run when a committed change matches its read set."""

    def __init__(self, functions: Runtime, name: str, args: dict[str, Any],
                 identity: Identity) -> None:
        self._runtime, self._name, self._args, self._identity = functions, name, args, identity
        self._matcher = Matcher()
        self._snapshot = ""
        self._outcome = self._run()

    @property
    def value(self) -> Any:
        """The current result (decoded); raises FunctionError if the query failed."""
        return _value(self._outcome)

    def next(self, timeout: float = 5.0, poll: float = 0.02) -> Any:
        """Wait until a commit changes the result and return the new one.

        Raises TimeoutError when nothing changed the result within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            previous = self._outcome
            if self._changed_since_snapshot():
                self._outcome = self._run()
                if self._outcome != previous:
                    return _value(self._outcome)
            time.sleep(poll)
        raise TimeoutError(f"No new result for {self._name} within {timeout} s.")

    def close(self) -> None:
        self._matcher.remove(self._name)

    def _run(self) -> Outcome:
        def evaluate() -> Outcome:
            self._snapshot = _snapshot()
            result = self._runtime.evaluate(Call(self._name, self._args, self._identity))
            self._matcher.set(self._name, result.read_set)
            return result.outcome

        return run_read_only(evaluate, function=self._name)

    def _changed_since_snapshot(self) -> bool:
        def read() -> bool:
            previous, self._snapshot = self._snapshot, _snapshot()
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                changes = triggers.changes_since(cursor, previous)
            return bool(changes and self._matcher.match(changes))

        return run_read_only(read, function=f"{self._name} (changes)")


def drain_jobs(*, advance: datetime.timedelta | None = None, max_jobs: int = 1000) -> list[str]:
    """Run scheduled jobs in this process until none is due; return their final states.

    Jobs run in due order, one at a time, through the same code a Celery worker runs, so a test
    needs no worker and no waiting. ``advance`` first moves pending jobs due within that much
    time to now (time travel). Jobs scheduled by the jobs run too if they are due. Raises
    RuntimeError after ``max_jobs`` (a job that keeps scheduling itself).
    """
    from reactive.models import Job, JobState
    from reactive.scheduling.runner import run_job

    now = timezone.now()
    if advance is not None:
        Job.objects.filter(state=JobState.PENDING, due_at__lte=now + advance).update(due_at=now)
    states: list[str] = []
    while True:
        due = list(Job.objects.filter(state=JobState.PENDING, due_at__lte=timezone.now())
                   .order_by("due_at", "pk").values_list("pk", flat=True)[:100])
        if not due:
            return states
        for pk in due:
            if len(states) >= max_jobs:
                raise RuntimeError(f"drain_jobs ran {max_jobs} jobs and more are due.")
            states.append(run_job(pk) or "skipped")


def _snapshot() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        row = cursor.fetchone()
    return str(row[0])


def _value(outcome: Outcome) -> Any:
    if outcome.ok:
        return values.decode(outcome.value)
    if outcome.has_error_data:
        raise FunctionError(outcome.error_data, message=outcome.error)
    raise AssertionError(f"The query failed: {outcome.error}")
