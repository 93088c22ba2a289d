"""Property: live subscriptions on ``notes`` converge through a move to a model. Random
interleavings of writes (insert, pin, delete), partial moves and the switch to
``DOCUMENTS_MODELS`` (with re-subscription, as a server restart does); after every step each
subscription (the server's own Reactor round, ``reactive.testing``) must come to show what the
query answers when run afresh (a value, or the same error), and at the end the database's
contents, every id kept. Bounded in ``make test`` (``REACTIVE_MOVE_EXAMPLES``, default 30).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import FunctionError, values
from reactive.documents import move, routes
from reactive.models import Document, DocumentShape
from reactive.testing import Caller, Subscription
from tests.testapp.models import MovedNote

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("REACTIVE_MOVE_EXAMPLES", "30"))
P = "testapp/documents:"
QUERIES: list[tuple[str, dict[str, Any]]] = [("pinned", {}), ("tagged", {"tag": "x"}),
                                             ("all_of", {"table": "notes"})]
STEP = st.one_of(
    st.tuples(st.just("insert"), st.booleans(), st.sampled_from([["x"], ["y"], [], ["x", "y"]])),
    st.tuples(st.just("pin"), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 40)),
    st.tuples(st.just("move"), st.integers(1, 3)),
    st.tuples(st.just("route")),
)


def answer(name: str, args: dict[str, Any]) -> Any:
    """What a client subscribing now would get: the value, or ("error", code)."""
    try:
        return values.decode(values.encode(Caller().query(P + name, **args)))
    except FunctionError as exc:
        return ("error", exc.data["code"])


def shown(sub: Subscription) -> Any:
    try:
        return sub.value
    except FunctionError as exc:
        return ("error", exc.data["code"])


def converge(subs: dict[str, Subscription], step: Any) -> None:
    for (name, args), sub in zip(QUERIES, subs.values(), strict=True):
        expected = answer(name, args)
        while shown(sub) != expected:
            try:
                sub.next(timeout=5)
            except TimeoutError:
                raise AssertionError(f"after {step}, {name} shows {shown(sub)!r}, a fresh run "
                                     f"answers {expected!r}") from None


def write(step: tuple[Any, ...], ids: list[str], deleted: set[str]) -> None:
    caller = Caller()
    try:
        if step[0] == "insert":
            ids.append(caller.mutation(P + "add_note", body=f"n{len(ids)}", tags=step[2],
                                       pinned=step[1]))
        elif step[0] == "pin" and ids:
            caller.mutation(P + "patch", id=ids[step[1] % len(ids)], fields={"pinned": step[2]})
        elif step[0] == "delete" and ids:
            caller.mutation(P + "delete", id=ids[step[1] % len(ids)])
            deleted.add(ids[step[1] % len(ids)])
    except FunctionError as exc:  # a note deleted, or moved while not routed: documented
        if exc.data["code"] != "DocumentNotFound":
            raise


def move_some(count: int) -> None:
    with transaction.atomic():
        for doc in Document.objects.select_for_update().filter(table="notes").order_by(
                "creation_time", "id")[:count]:
            move.move_document(doc, MovedNote)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.lists(st.tuples(st.booleans(), st.sampled_from([["x"], ["y"]])), max_size=4),
       steps=st.lists(STEP, max_size=10))
def test_subscriptions_converge_through_partial_moves_and_the_switch_to_the_model(
        seed: list[tuple[bool, list[str]]], steps: list[tuple[Any, ...]]) -> None:
    Document.objects.filter(table="notes").delete()
    DocumentShape.objects.filter(pk="notes").delete()
    MovedNote.objects.all().delete()
    ids: list[str] = []
    for pinned, tags in seed:
        write(("insert", pinned, tags), ids, set())
    routed = override_settings(REACTIVE={**django_settings.REACTIVE,
                                         "DOCUMENTS_MODELS": {"notes": "testapp.MovedNote"}})
    deleted: set[str] = set()
    with contextlib.ExitStack() as outer:
        phase = outer.enter_context(contextlib.ExitStack())  # the subscriptions of one server

        def subscribe() -> dict[str, Subscription]:
            return {name: phase.enter_context(Caller().subscribe(P + name, **args))
                    for name, args in QUERIES}

        subs = subscribe()
        is_routed = False
        for step in [*steps, ("route",)]:
            # When the step runs
            if step[0] == "route":
                if is_routed:
                    continue
                phase.close()  # a restart with the setting: clients subscribe again
                outer.enter_context(routed)
                is_routed = True
                subs = subscribe()
            elif step[0] == "move":
                move_some(step[1])
            else:
                write(step, ids, deleted)
            # Then every subscription comes to show what a fresh run answers
            converge(subs, step)
        # When the move finishes
        move.move_documents("notes", MovedNote, batch_size=2)
        converge(subs, "the final move")
        # Then the subscriptions show the database's contents: every note kept, with its id
        rows = [routes.as_document(r) for r in MovedNote.objects.order_by("creation_time", "id")]
        assert subs["all_of"].value == values.decode(values.encode(rows))
        assert [r["_id"] for r in rows] == [i for i in ids if i not in deleted]
        assert not Document.objects.filter(table="notes").exists()
        phase.close()
