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

Subscriptions run the server's own Reactor round (change capture, read sets, a re-run at a
fresh snapshot, the Transition it would send), so a test sees exactly what a client would.
Tests need ``django_db(transaction=True)``: functions open their own transactions.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils import timezone

from reactive import values
from reactive.exceptions import FunctionError
from reactive.functions.runtime import Runtime, runtime
from reactive.live.inbox import (
    AddRequest,
    IdentityChanged,
    InboxEvent,
    QuerySetChanged,
    SessionClosed,
)
from reactive.live.protocol import Outgoing
from reactive.live.reactor import Reactor
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
    """One live query, driven by the server's own round: re-run when a committed change
    matches its read set, and changed only when the result a client would get changes."""

    QUERY_ID = 0

    def __init__(self, functions: Runtime, name: str, args: dict[str, Any],
                 identity: Identity) -> None:
        self._name = name
        # This subscription is the round's only session; it prunes nothing and re-runs one
        # query, on the test's own connection.
        self._reactor = Reactor(functions, prune=False, rerun_connections=1)
        self._modification: dict[str, Any] | None = None
        events: list[InboxEvent] = []
        if not identity.is_anonymous:
            events.append(IdentityChanged(self, 0, identity))
        events.append(QuerySetChanged(self, 1, (AddRequest(self.QUERY_ID, name, args, None),), ()))
        if not self._round(events):
            raise AssertionError(f"The first round sent no result for {name}.")

    @property
    def value(self) -> Any:
        """The current result (decoded); raises FunctionError if the query failed."""
        assert self._modification is not None
        return _value(self._modification)

    def next(self, timeout: float = 5.0, poll: float = 0.02) -> Any:
        """Wait until a commit changes the result and return the new one.

        Raises TimeoutError when nothing changed the result within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._round([]):
                return self.value
            time.sleep(poll)
        raise TimeoutError(f"No new result for {self._name} within {timeout} s.")

    def close(self) -> None:
        self._reactor.subscriptions.apply(SessionClosed(self))

    def deliver(self, messages: list[Outgoing]) -> None:
        """The session handle the round answers: keep this query's latest modification."""
        for message in messages:
            data = json.loads(message) if isinstance(message, str) else message
            for change in data.get("modifications", []):
                if change.get("queryId") == self.QUERY_ID and change["type"] != "QueryRemoved":
                    self._modification = change

    def _round(self, events: list[InboxEvent]) -> bool:
        """Run one round; True if it sent this query a new result."""
        before = self._modification
        for handle, messages in self._reactor.run_round(events):
            handle.deliver(messages)
        return self._modification is not before


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


def _value(modification: dict[str, Any]) -> Any:
    """A QueryUpdated's value, decoded; a QueryFailed raises as the client would."""
    if modification["type"] == "QueryUpdated":
        return values.decode(modification["value"])
    if "errorData" in modification:
        raise FunctionError(modification["errorData"], message=modification["errorMessage"])
    raise AssertionError(f"The query failed: {modification['errorMessage']}")
