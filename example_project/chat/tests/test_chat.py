"""The chat's functions, tested with reactive.testing on the real database."""

import datetime

import pytest

from reactive import FunctionError
from reactive.testing import Caller, drain_jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ada(django_user_model):
    user, _ = django_user_model.objects.get_or_create(username="ada")
    return Caller.for_user(user)


@pytest.fixture
def grace(django_user_model):
    user, _ = django_user_model.objects.get_or_create(username="grace")
    return Caller.for_user(user)


def test_a_message_reaches_subscribers(ada, grace):
    with grace.subscribe("chat:list", channel="general") as messages:
        ada.mutation("chat:send", channel="general", body="hello")
        [message] = messages.next()
    assert (message["author_name"], message["body"]) == ("ada", "hello")


def test_logged_out_callers_cannot_send():
    with pytest.raises(FunctionError) as info:
        Caller().mutation("chat:send", channel="general", body="hi")
    assert info.value.data["code"] == "LOGIN_REQUIRED"


def test_only_the_author_edits_or_deletes(ada, grace):
    message_id = ada.mutation("chat:send", channel="general", body="mine")
    with pytest.raises(FunctionError) as info:
        grace.mutation("chat:remove", id=message_id)
    assert info.value.data["code"] == "FORBIDDEN"
    ada.mutation("chat:edit", id=message_id, body="still mine")
    [message] = ada.query("chat:list", channel="general")
    assert message["body"] == "still mine"
    assert message["edited_at"] is not None


def test_unread_counts_follow_reads(ada, grace):
    ada.mutation("chat:send", channel="general", body="one")
    ada.mutation("chat:send", channel="general", body="two")
    with grace.subscribe("chat:unread") as unread:
        assert unread.value["general"] == 2
        grace.mutation("chat:mark_read", channel="general")
        assert unread.next()["general"] == 0


def test_expiring_messages_disappear_when_their_job_runs(ada):
    with ada.subscribe("chat:list", channel="general") as messages:
        ada.mutation("chat:send", channel="general", body="poof", expires_in=60)
        assert [m["body"] for m in messages.next()] == ["poof"]
        assert drain_jobs() == []  # not due yet
        assert drain_jobs(advance=datetime.timedelta(minutes=2)) == ["success"]
        assert messages.next() == []


def test_history_pages_through_older_messages(ada):
    for n in range(5):
        ada.mutation("chat:send", channel="general", body=f"m{n}")
    first = ada.query("chat:history", channel="general",
                      pagination_opts={"numItems": 2, "cursor": None})
    assert [m["body"] for m in first["page"]] == ["m4", "m3"]
    second = ada.query("chat:history", channel="general",
                       pagination_opts={"numItems": 2, "cursor": first["continueCursor"]})
    assert [m["body"] for m in second["page"]] == ["m2", "m1"]


def test_the_digest_cron_counts_recent_messages(ada):
    ada.mutation("chat:send", channel="random", body="hi")
    Caller.admin().mutation("chat:post_digest")
    bodies = [m["body"] for m in ada.query("chat:list", channel="general")]
    assert bodies == ["Last hour: #random: 1"]


@pytest.mark.parametrize("name", ["Bad Name!", "", "UPPER", "x" * 51, "a/b"])
def test_bad_channel_names_are_refused(ada, name):
    with pytest.raises(FunctionError) as info:
        ada.mutation("chat:create_channel", name=name)
    assert info.value.data["code"] == "BAD_CHANNEL"
    with pytest.raises(FunctionError):
        ada.mutation("chat:send", channel=name, body="hi")


def test_a_channel_can_be_created_before_its_first_message(ada):
    with ada.subscribe("chat:channels") as channels:
        assert ada.mutation("chat:create_channel", name="design-review") == "design-review"
        assert "design-review" in [room["name"] for room in channels.next()]


def test_messages_written_anywhere_mark_the_channel_read_for_their_author(ada, grace):
    # Given a message posted by grace outside chat:send (as the admin or a script would)
    from django.contrib.auth.models import User

    from chat.models import Channel, Message
    from reactive.reactions import runner

    runner.ensure_rows()
    ada.mutation("chat:send", channel="ops", body="deploying?")
    assert grace.query("chat:unread")["ops"] == 1
    user = User.objects.get(username="grace")
    room = Channel.objects.get(name="ops")
    Message.objects.create(channel=room, author=user, author_name="grace", body="deployed")
    # When the reaction runs (a Celery worker's dispatcher does this after each commit)
    runner.drain("chat:mark_own_messages_read")
    # Then posting in the channel marked what she answered as read
    assert grace.query("chat:unread")["ops"] == 0


def test_the_cleanup_migration_strips_old_bodies(ada):
    from django.core.management import call_command

    from chat.models import Channel, Message

    room = Channel.objects.create(name="old")
    kept = Message.objects.create(channel=room, body="fine")
    messy = Message.objects.create(channel=room, body="  padded \n")
    call_command("reactive_migrations", "run", "chat:strip_bodies", "--inline")
    assert Message.objects.get(pk=messy.pk).body == "padded"
    assert Message.objects.get(pk=kept.pk).body == "fine"


def test_search_as_you_type_follows_new_and_edited_messages(ada, grace):
    ada.mutation("chat:send", channel="general", body="the deploy failed again")
    with grace.subscribe("chat:search", channel="general", text="deplo") as hits:
        assert [h["body"] for h in hits.value] == ["the deploy failed again"]
        second = ada.mutation("chat:send", channel="general", body="deploying a fix now")
        assert len(hits.next()) == 2
        ada.mutation("chat:edit", id=second, body="fix is out")
        assert [h["body"] for h in hits.next()] == ["the deploy failed again"]


def test_similar_messages_rank_by_the_local_embedding(ada):
    from chat.embedding import embed

    assert embed("Deploy failed") == embed("deploy FAILED")  # deterministic, case-folded
    target = ada.mutation("chat:send", channel="general", body="the deploy failed")
    ada.mutation("chat:send", channel="general", body="lunch at noon?")
    ada.mutation("chat:send", channel="general", body="deploy failed twice")
    similar = ada.query("chat:similar", id=target, k=2)
    assert [m["body"] for m in similar] == ["deploy failed twice", "lunch at noon?"]
