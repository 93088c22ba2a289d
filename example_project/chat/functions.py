"""The chat's functions, called by the page through the official Convex browser client.

`chat:channels`, `chat:history` (paginated, live), `chat:unread`, `chat:me`; mutations
`chat:create_channel`, `chat:send`, `chat:send_image` (after `chat:generate_upload_url`),
`chat:edit`, `chat:remove`, `chat:mark_read`; `chat:summarize` (an action calling an outside
service); internal `chat:expire` (scheduled) and `chat:post_digest` (a cron). A reaction,
`chat:mark_own_messages_read`, and a cleanup data migration, `chat:strip_bodies`.
"""

import datetime
import json
import re
import urllib.request
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from reactive import (
    ActionCtx,
    Change,
    FunctionError,
    Id,
    MutationCtx,
    QueryCtx,
    StoredFile,
    action,
    internal_mutation,
    migration,
    mutation,
    on_change,
    query,
)
from reactive.functions.convert import to_value
from reactive.functions.pagination import PaginationOptions
from reactive.search import nearest
from reactive.search import search as text_search

from .embedding import embed
from .models import Channel, Message, ReadMarker

MAX_EXPIRY_SECONDS = 24 * 3600
# The page's channel-name input has the same rule (its `pattern` attribute): lowercase slugs.
CHANNEL_NAME = re.compile(r"[a-z0-9_-]{1,50}")


@query
def me(ctx: QueryCtx) -> Any:
    user = ctx.auth.user
    return {"username": user.get_username()} if user.is_authenticated else None


@query
def channels(ctx: QueryCtx) -> Any:
    return Channel.objects.order_by("name")


@query
def list(ctx: QueryCtx, channel: str, limit: int = 50) -> Any:
    """The newest messages of a channel, newest first.

    The channel is looked up first, so the query depends on that channel's messages only, not
    on every message (a filter through the join would).
    """
    room = Channel.objects.filter(name=channel).first()
    if room is None:
        return []
    newest = Message.objects.filter(channel=room).order_by("-id")[: min(limit, 200)]
    return [_document(ctx, message) for message in newest]


@query
def history(ctx: QueryCtx, channel: str, pagination_opts: PaginationOptions) -> Any:
    """A channel's messages page by page, newest first (infinite scroll, live)."""
    room = Channel.objects.filter(name=channel).first()
    result = ctx.paginate(Message.objects.filter(channel=room).order_by("-id"), pagination_opts)
    result["page"] = [_document(ctx, message) for message in result["page"]]
    return result


def _document(ctx: QueryCtx, message: Message) -> dict[str, Any]:
    """A message as the page shows it: its fields, plus ``image_url`` for an attached image
    (``ctx.storage.get_url`` reads the file's row, so deleting the file updates the page)."""
    url = ctx.storage.get_url(message.image_id) if message.image_id else None
    document = to_value(message)
    assert isinstance(document, dict)
    document.pop("embedding", None)  # 64 numbers the page has no use for (chat:similar has)
    return {**document, "image_url": url}


@query
def search(ctx: QueryCtx, channel: str, text: str, limit: int = 20) -> Any:
    """Live search-as-you-type in one channel: the last word is a prefix, best match first."""
    rows = Message.objects.filter(channel__name=channel)
    return [_hit(m) for m in text_search(rows, "body", text[:200])[:min(limit, 50)]]


@query
def similar(ctx: QueryCtx, id: Id[Message], k: int = 5) -> Any:
    """The ``k`` messages of the same channel closest in meaning (by the local embedding)."""
    message = Message.objects.filter(pk=id).first()
    if message is None or message.embedding is None:
        return []
    rows = Message.objects.filter(channel_id=message.channel_id).exclude(pk=message.pk)
    return [_hit(m) for m in nearest(rows, "embedding", message.embedding, k=min(k, 20))]


def _hit(message: Message) -> dict[str, Any]:
    return {"_id": str(message.pk), "body": message.body, "author_name": message.author_name}


@query
def unread(ctx: QueryCtx) -> dict[str, int]:
    """Unread messages per channel for the caller (0 everywhere when logged out)."""
    user = ctx.auth.user
    if not user.is_authenticated:
        return {}
    markers = dict(ReadMarker.objects.filter(user=user).values_list("channel_id", "last_read_id"))
    counts: dict[str, int] = {}
    for room in Channel.objects.order_by("name"):
        counts[room.name] = (
            Message.objects.filter(channel=room, id__gt=markers.get(room.pk, 0))
            .exclude(author=user)
            .count()
        )
    return counts


@mutation
def create_channel(ctx: MutationCtx, name: str) -> str:
    """Create a channel (or find it): lowercase letters, digits, ``-`` and ``_``."""
    _user(ctx)
    return _room(name).name


@mutation
def send(ctx: MutationCtx, channel: str, body: str, expires_in: int | None = None) -> str:
    """Post a message; with ``expires_in`` (seconds) it deletes itself on time."""
    user = _user(ctx)
    body = body.strip()
    if not body:
        raise FunctionError({"code": "EMPTY", "message": "Write something first."})
    if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRY_SECONDS:
        raise FunctionError({"code": "BAD_EXPIRY", "message": "Expiry must be 1 s to 24 h."})
    room = _room(channel)
    expires_at = timezone.now() + datetime.timedelta(seconds=expires_in) if expires_in else None
    message = Message.objects.create(
        channel=room, author=user, author_name=user.get_username(), body=body,
        expires_at=expires_at, embedding=embed(body),
    )
    if expires_in:
        ctx.scheduler.run_after(expires_in, expire, id=str(message.pk))
    _mark_read(user, room, message.pk)
    return str(message.pk)


@mutation
def generate_upload_url(ctx: MutationCtx) -> str:
    """Step 1 of attaching an image: a signed, single-use URL the page POSTs the file to."""
    _user(ctx)
    return ctx.storage.generate_upload_url()


@mutation
def send_image(ctx: MutationCtx, channel: str, storage_id: Id[StoredFile],
               body: str = "") -> str:
    """Step 3: post the uploaded file (the ``storageId`` the upload answered) as a message."""
    user = _user(ctx)
    metadata = ctx.storage.get_metadata(storage_id)
    if metadata is None:
        raise FunctionError({"code": "NOT_FOUND", "message": "That upload is gone; try again."})
    if not str(metadata["contentType"]).startswith("image/"):
        raise FunctionError({"code": "NOT_AN_IMAGE", "message": "Only images can be attached."})
    room = _room(channel)
    message = Message.objects.create(channel=room, author=user, author_name=user.get_username(),
                                     body=body.strip(), image_id=metadata["_id"],
                                     embedding=embed(body) if body.strip() else None)
    _mark_read(user, room, message.pk)
    return str(message.pk)


@mutation
def edit(ctx: MutationCtx, id: Id[Message], body: str) -> None:
    message = _own_message(ctx, id)
    if not body.strip():
        raise FunctionError({"code": "EMPTY", "message": "A message cannot be empty."})
    message.body = body.strip()
    message.edited_at = timezone.now()
    message.embedding = embed(message.body)
    message.save(update_fields=["body", "edited_at", "embedding"])


@mutation
def remove(ctx: MutationCtx, id: Id[Message]) -> None:
    _own_message(ctx, id).delete()


@mutation
def mark_read(ctx: MutationCtx, channel: str) -> None:
    user = _user(ctx)
    room = Channel.objects.filter(name=channel).first()
    if room is not None:
        newest = Message.objects.filter(channel=room).order_by("-id").values_list("id", flat=True)
        _mark_read(user, room, newest.first() or 0)


@internal_mutation
def expire(ctx: MutationCtx, id: str) -> None:
    """Scheduled by `send`: delete the message when its time is up (it may be gone already)."""
    Message.objects.filter(pk=int(id)).delete()


@internal_mutation
def post_digest(ctx: MutationCtx) -> None:
    """A cron: post how many messages each channel got in the last hour, into #general."""
    since = timezone.now() - datetime.timedelta(hours=1)
    recent = Count("messages", filter=Q(messages__created_at__gte=since))
    counts = Channel.objects.annotate(recent=recent).filter(recent__gt=0).order_by("name")
    if not counts:
        return
    summary = ", ".join(f"#{c.name}: {c.recent}" for c in counts)
    room, _ = Channel.objects.get_or_create(name="general")
    Message.objects.create(channel=room, author_name="digest-bot",
                           body=f"Last hour: {summary}")


@mutation
def post_as_bot(ctx: MutationCtx, channel: str, body: str) -> str:
    """Used by `summarize`: a message from the summary bot on behalf of the logged-in caller."""
    _user(ctx)
    room = _room(channel)
    return str(Message.objects.create(channel=room, author_name="summary-bot", body=body,
                                      embedding=embed(body)).pk)


@action
async def summarize(ctx: ActionCtx, channel: str) -> str:
    """Send the channel's recent messages to an outside summarizer; post what it answers."""
    messages = await ctx.run_query(list, channel=channel, limit=20)
    texts = [m["body"] for m in reversed(messages) if m["body"]]
    summary = await _call_summarizer(texts)
    await ctx.run_mutation(post_as_bot, channel=channel, body=summary)
    return summary


async def _call_summarizer(texts: Any) -> str:
    from asgiref.sync import sync_to_async

    def call() -> str:
        request = urllib.request.Request(
            settings.CHAT_SUMMARIZER_URL, data=json.dumps({"texts": texts}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["summary"])

    try:
        return await sync_to_async(call, thread_sensitive=False)()
    except OSError as exc:
        raise FunctionError({"code": "SUMMARIZER_DOWN", "message": str(exc)}) from None


def _user(ctx: QueryCtx) -> Any:
    user = ctx.auth.user
    if not user.is_authenticated:
        raise FunctionError({"code": "LOGIN_REQUIRED", "message": "Log in first."})
    return user


def _room(name: str) -> Channel:
    """The channel called ``name``, created on first use; FunctionError for a bad name."""
    if not CHANNEL_NAME.fullmatch(name):
        raise FunctionError({"code": "BAD_CHANNEL", "message": (
            "Channel names are 1-50 lowercase letters, digits, - or _.")})
    return Channel.objects.get_or_create(name=name)[0]


def _mark_read(user: Any, room: Channel, message_id: int) -> None:
    marker, _ = ReadMarker.objects.get_or_create(user=user, channel=room)
    if message_id > marker.last_read_id:
        ReadMarker.objects.filter(pk=marker.pk).update(last_read_id=message_id)


def _own_message(ctx: MutationCtx, message_id: Any) -> Message:
    user = _user(ctx)
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        raise FunctionError({"code": "NOT_FOUND", "message": "That message is gone."})
    if message.author_id != user.pk:
        raise FunctionError(
            {"code": "FORBIDDEN", "message": "You can only change your own messages."}
        )
    return message


@on_change(Message, where=Q(author__isnull=False), ops=("insert",))
def mark_own_messages_read(ctx: MutationCtx, change: Change[Message]) -> None:
    """An author has read their own messages, however they were posted: ``chat:send``, the
    admin, ``chat:post_as_bot`` or a script writing the table directly."""
    message = change.new
    if message is not None and message.author_id is not None:
        marker, _ = ReadMarker.objects.get_or_create(
            user_id=message.author_id, channel_id=message.channel_id
        )
        if marker.last_read_id < message.pk:
            ReadMarker.objects.filter(pk=marker.pk).update(last_read_id=message.pk)


@migration(Message.objects.filter(Q(body__regex=r"^\s") | Q(body__regex=r"\s$")),
           batch_size=500)
def strip_bodies(ctx: MutationCtx, message: Message) -> None:
    """Cleanup: messages written before ``chat:send`` stripped whitespace lose it now
    (``manage.py reactive_migrations run chat:strip_bodies``)."""
    message.body = message.body.strip()
    message.save(update_fields=["body"])
