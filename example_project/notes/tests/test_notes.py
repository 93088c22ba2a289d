"""The schema-free notes (ctx.db), tested with reactive.testing on the real database."""

import pytest

from reactive import FunctionError
from reactive.documents import store
from reactive.testing import Caller

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ada(django_user_model):
    user, _ = django_user_model.objects.get_or_create(username="ada")
    return Caller.for_user(user)


def test_pinning_moves_a_note_into_the_live_pinned_list(ada):
    first = ada.mutation("notes:add", body="standup at 10", tags=["Team", "#daily", "team"])
    second = ada.mutation("notes:add", body="ship friday", tags=[])
    with ada.subscribe("notes:pinned") as pinned:
        assert pinned.value == []
        ada.mutation("notes:pin", id=first, pinned=True)
        [note] = pinned.next()
        assert (note["body"], note["tags"], note["author"]) == ("standup at 10",
                                                                ["team", "daily"], "ada")
        ada.mutation("notes:pin", id=second, pinned=True)
        assert [n["_id"] for n in pinned.next()] == [second, first]  # newest first
        ada.mutation("notes:pin", id=first, pinned=False)
        assert [n["_id"] for n in pinned.next()] == [second]
        ada.mutation("notes:delete", id=second)
        assert pinned.next() == []
    assert [n["body"] for n in ada.query("notes:recent")] == ["standup at 10"]


@pytest.mark.parametrize(("args", "code"), [
    ({"body": "   ", "tags": []}, "EMPTY"),
    ({"body": "x" * 501, "tags": []}, "TOO_LONG"),
    ({"body": "ok", "tags": ["no spaces allowed"]}, "BAD_TAGS"),
    ({"body": "ok", "tags": ["a", "b", "c", "d", "e", "f"]}, "BAD_TAGS"),
])
def test_bad_notes_are_refused_and_nothing_is_written(ada, args, code):
    with pytest.raises(FunctionError) as info:
        ada.mutation("notes:add", **args)
    assert info.value.data["code"] == code
    assert ada.query("notes:recent") == []


def test_only_notes_can_be_pinned_or_deleted_and_only_when_logged_in(ada):
    with pytest.raises(FunctionError) as info:
        Caller().mutation("notes:add", body="hi", tags=[])
    assert info.value.data["code"] == "LOGIN_REQUIRED"
    for bad_id in ("nope", "0" * 32):
        with pytest.raises(FunctionError) as info:
            ada.mutation("notes:pin", id=bad_id, pinned=True)
        assert info.value.data["code"] == "NOT_FOUND"
    # An id of another schema-free table is not a note, and a deleted note is gone
    other = store.insert("drafts", {"body": "not a note"})
    gone = ada.mutation("notes:add", body="mine", tags=[])
    ada.mutation("notes:delete", id=gone)
    for bad_id in (other, gone):
        with pytest.raises(FunctionError) as info:
            ada.mutation("notes:delete", id=bad_id)
        assert info.value.data["code"] == "NOT_FOUND"
    assert store.get(other) == {"_id": other, "_creationTime": store.get(other)["_creationTime"],
                                "body": "not a note"}
