"""The Reactor's bookkeeping on its own: no database, no server, results recorded by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reactive.functions.runtime import Outcome
from reactive.live import protocol
from reactive.live.inbox import (
    AddRequest,
    IdentityChanged,
    MutationDone,
    QuerySetChanged,
    SessionClosed,
)
from reactive.live.subscriptions import Delivery, Subscriptions
from reactive.types import Identity


class Handle:
    """A session handle that is never delivered to: the tests read ``news`` directly."""

    def deliver(self, messages: list[protocol.Outgoing]) -> None:
        raise AssertionError("not used")


def add(query_id: int, path: str = "notes:list", journal: str | None = None,
        **args: Any) -> AddRequest:
    return AddRequest(query_id, path, [args], journal)


def modify(session: Handle, version: int, adds: tuple[AddRequest, ...] = (),
           removes: tuple[int, ...] = ()) -> QuerySetChanged:
    return QuerySetChanged(session, version, adds, removes)


def run(subs: Subscriptions, value: Any = "v") -> set[Any]:
    """Stand in for a round: every pending query 'returns' ``value``."""
    pending = subs.pending(set())
    changed = {e.key for e in pending if e.record(Outcome(value=value), [])}
    subs.evaluated()
    return changed


def frames(deliveries: list[Delivery]) -> dict[Any, list[dict[str, Any]]]:
    return {handle: [json.loads(m) if isinstance(m, str) else m for m in messages]
            for handle, messages in deliveries}


def test_sessions_share_one_entry_per_function_args_identity_and_journal() -> None:
    # Given two sessions subscribing to the same query, and one to other args
    subs, a, b = Subscriptions(), Handle(), Handle()
    subs.apply(modify(a, 1, (add(1, channel="x"), add(2, channel="y"))))
    subs.apply(modify(b, 1, (add(7, "notes.js:list", channel="x"),)))

    # Then the shared one is a single entry with both subscribers, and both are pending once
    assert len(subs.queries) == 2
    assert len(subs.pending(set())) == 2
    shared = next(e for e in subs.queries.values() if e.args == {"channel": "x"})
    assert {qid for _, qid in shared.subscribers} == {1, 7}


def test_identity_is_part_of_the_key_and_a_change_re_keys_the_session() -> None:
    # Given two sessions on the same query, one of them then signing in
    subs, a, b = Subscriptions(), Handle(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.apply(modify(b, 1, (add(1),)))
    run(subs)
    subs.news(set(), 1, 0)
    dropped = subs.apply(IdentityChanged(b, 1, Identity(user_id="ada")))

    # Then b's query is a new, pending entry of its own and the shared one is kept
    assert dropped == []
    assert len(subs.queries) == 2
    assert [e.identity.user_id for e in subs.pending(set())] == ["ada"]


def test_first_round_sends_each_subscriber_its_result_then_only_changes() -> None:
    # Given two sessions on one query
    subs, a, b = Subscriptions(), Handle(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.apply(modify(b, 1, (add(3),)))

    # When the first round records a result
    sent = frames(subs.news(run(subs, "one"), 10, 0))

    # Then each gets a Transition from the initial version carrying the value
    for handle, qid in ((a, 1), (b, 3)):
        (transition,) = sent[handle]
        assert transition["startVersion"]["querySet"] == 0
        assert transition["endVersion"]["querySet"] == 1
        assert transition["modifications"] == [
            {"type": "QueryUpdated", "queryId": qid, "value": "one", "logLines": [],
             "journal": None}]

    # And a re-run with the same result sends nothing, a different one sends both
    entry = next(iter(subs.queries.values()))
    assert not entry.record(Outcome(value="one"), [])
    assert subs.news(set(), 11, 0) == []
    assert entry.record(Outcome(value="two"), [])
    assert set(frames(subs.news({entry.key}, 12, 0))) == {a, b}


def test_removing_the_last_subscriber_drops_the_query_and_sends_query_removed() -> None:
    # Given two sessions on one query
    subs, a, b = Subscriptions(), Handle(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.apply(modify(b, 1, (add(1),)))
    subs.news(run(subs), 1, 0)

    # When one removes it, the query stays; when the other closes, it is dropped
    assert subs.apply(modify(a, 2, removes=(1,))) == []
    (transition,) = frames(subs.news(set(), 2, 0))[a]
    assert transition["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    keys = list(subs.queries)
    assert subs.apply(SessionClosed(b)) == keys
    assert subs.queries == {}
    assert set(subs.sessions) == {a}


def test_closing_a_session_returns_the_keys_no_one_holds() -> None:
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1, n=1), add(2, n=2))))
    keys = set(subs.queries)
    assert set(subs.apply(SessionClosed(a))) == keys
    assert subs.sessions == {}
    # A closed session's late events are ignored
    assert subs.apply(SessionClosed(a)) == []


def test_mutation_responses_come_before_the_transition_with_its_timestamp() -> None:
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.news(run(subs), 5, 0)
    subs.apply(MutationDone(a, 4, Outcome(value=None)))
    subs.apply(MutationDone(a, 5, Outcome(error="boom")))

    response_ok, response_failed, transition = frames(subs.news(set(), 6, 0))[a]

    assert response_ok["type"] == "MutationResponse" and response_ok["success"] is True
    assert response_ok["ts"] == transition["endVersion"]["ts"]
    assert response_failed == {"type": "MutationResponse", "requestId": 5, "success": False,
                               "result": "boom", "logLines": []}
    assert transition["modifications"] == []


def test_a_held_session_keeps_its_news_and_an_idle_one_holds_none() -> None:
    # Given two sessions on one query, sent their first results
    subs, a, b = Subscriptions(), Handle(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.apply(modify(b, 1, (add(2),)))
    (first,) = frames(subs.news(run(subs, "one"), 1, 0))[a]
    assert all(state.news is None for state in subs.sessions.values())

    # When the result changes and a's mutation response is due while a is held
    entry = next(iter(subs.queries.values()))
    entry.record(Outcome(value="two"), [])
    subs.apply(MutationDone(a, 9, Outcome(value=None)))
    sent = frames(subs.news({entry.key}, 2, 0, held={a}))

    # Then b is sent the change now, and a nothing yet
    assert set(sent) == {b}
    assert subs.sessions[b].news is None

    # And once released, a gets its response and the change it missed, in one Transition
    response, transition = frames(subs.news(set(), 3, 0))[a]
    assert response["requestId"] == 9 and response["ts"] == transition["endVersion"]["ts"]
    assert transition["startVersion"] == first["endVersion"]
    assert [m["value"] for m in transition["modifications"]] == ["two"]
    assert all(state.news is None for state in subs.sessions.values())
    assert subs.news(set(), 4, 0) == []


def test_bad_args_or_journal_fail_that_query_only() -> None:
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (AddRequest(1, "notes:list", ["not an object"], None),
                             add(2, journal="[1, 2]"), add(3))))
    (transition,) = frames(subs.news(run(subs), 1, 0))[a]
    by_id = {m["queryId"]: m for m in transition["modifications"]}
    assert by_id[1]["type"] == "QueryFailed" and "object" in by_id[1]["errorMessage"]
    assert by_id[2]["type"] == "QueryFailed" and "journal" in by_id[2]["errorMessage"]
    assert by_id[3]["type"] == "QueryUpdated"
    assert len(subs.queries) == 1


def test_queries_over_the_limit_are_refused_and_an_identity_change_keeps_the_accepted(
    settings: Any,
) -> None:
    settings.REACTIVE = {**getattr(settings, "REACTIVE", {}), "WEBSOCKET_MAX_QUERIES": 2}
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1, n=1), add(2, n=2), add(3, n=3))))
    assert len(subs.queries) == 2
    subs.apply(IdentityChanged(a, 1, Identity(user_id="ada")))
    (transition,) = frames(subs.news(run(subs), 1, 0))[a]
    by_id = {m["queryId"]: m for m in transition["modifications"]}
    assert [by_id[q]["type"] for q in (1, 2, 3)] == ["QueryUpdated", "QueryUpdated",
                                                     "QueryFailed"]
    assert "limit 2" in by_id[3]["errorMessage"]


def test_forgotten_results_are_sent_again() -> None:
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    subs.news(run(subs), 1, 0)
    subs.forget_results()
    entry = next(iter(subs.queries.values()))
    assert entry.record(Outcome(value="v"), [])


def test_a_journal_from_a_successful_run_is_pinned_for_the_next() -> None:
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1),)))
    entry = subs.pending(set())[0]
    entry.record(Outcome(value=[1]), ["cursor-end"])
    assert entry.journal_in == ["cursor-end"]
    entry.record(Outcome(error="boom"), ["other"])
    assert entry.journal_in == ["cursor-end"]


@pytest.mark.parametrize("event", ["close", "identity"])
def test_events_for_an_unknown_session_are_harmless(event: str) -> None:
    subs, a = Subscriptions(), Handle()
    if event == "close":
        assert subs.apply(SessionClosed(a)) == []
        assert subs.sessions == {}
    else:
        subs.apply(IdentityChanged(a, 1, Identity(user_id="x")))
        (transition,) = frames(subs.news(set(), 1, 0))[a]
        assert transition["endVersion"]["identity"] == 1


def test_a_result_over_the_size_limit_fails_that_query_and_a_smaller_one_recovers(
    settings: Any,
) -> None:
    settings.REACTIVE = {**getattr(settings, "REACTIVE", {}), "WEBSOCKET_MAX_RESULT_BYTES": 1024}
    subs, a = Subscriptions(), Handle()
    subs.apply(modify(a, 1, (add(1, n=1),)))
    (transition,) = frames(subs.news(run(subs, "x" * 2000), 1, 0))[a]
    (failed,) = transition["modifications"]
    assert failed["type"] == "QueryFailed"
    assert "2002 bytes of JSON, over the limit of 1024 bytes" in failed["errorMessage"]
    entry = next(iter(subs.queries.values()))
    assert entry.record(Outcome(value="small"), [])
    assert json.loads(str(entry.modification(1)))["type"] == "QueryUpdated"


@pytest.mark.parametrize(("path", "chunks"), [
    ("/api/1.48.0/sync", True), ("//api/1.28.0/sync", True), ("/api/2.0.0-beta.1/sync", True),
    ("/api/1.27.9/sync", False), ("/api/sync", False), ("/api/latest/sync", False),
    ("/api/1.48/sync", False),
])
def test_only_npm_clients_from_1_28_get_transition_chunks(path: str, chunks: bool) -> None:
    assert protocol.chunking_client(path) is chunks


def test_transition_chunks_join_to_the_transition_in_order() -> None:
    updated = protocol.query_updated(1, protocol.query_updated_tail(json.dumps("é" * 50), None,
                                                                    []))
    text = protocol.transition(protocol.INITIAL_VERSION, protocol.INITIAL_VERSION, [updated], 7)
    parts = [json.loads(p) for p in protocol.transition_chunks(text, 16)]
    assert [p["partNumber"] for p in parts] == list(range(len(parts)))
    assert {p["totalParts"] for p in parts} == {len(parts)}
    assert len({p["transitionId"] for p in parts}) == 1
    assert "".join(p["chunk"] for p in parts) == text


def test_a_transition_joined_from_shared_text_is_the_json_of_its_parts() -> None:
    # The QueryUpdated tail is encoded once per result and joined per session; the versions
    # are formatted without an encoder: the text must still be exactly this JSON.
    tail = protocol.query_updated_tail(json.dumps({"a": ["é", 1]}), '["j"]', ["log \"x\""])
    start = protocol.StateVersion(3, 1, 2**40 + 5)
    end = protocol.StateVersion(4, 1, 2**62)
    text = protocol.transition(start, end, [protocol.query_updated(7, tail),
                                            protocol.query_removed(8)], 99)
    assert json.loads(text) == {
        "type": "Transition", "startVersion": start.wire(), "endVersion": end.wire(),
        "modifications": [
            {"type": "QueryUpdated", "queryId": 7, "value": {"a": ["é", 1]},
             "logLines": ['log "x"'], "journal": '["j"]'},
            {"type": "QueryRemoved", "queryId": 8},
        ],
        "serverTs": 99,
    }
