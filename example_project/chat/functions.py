"""The chat's functions: `chat:channels`, `chat:list`, `chat:send`, `chat:edit`, `chat:remove`."""

from typing import Any

from django.utils import timezone

from reactive import FunctionError, Id, MutationCtx, QueryCtx, mutation, query
from reactive.pagination import PaginationOptions

from .models import Channel, Message


@query
def channels(ctx: QueryCtx) -> Any:
    return Channel.objects.order_by("name")


@query
def list(ctx: QueryCtx, channel: str, limit: int = 50) -> Any:
    """The newest messages of a channel, newest first.

    The channel is looked up first so the query depends on that channel's messages only,
    not on every message (a filter through the join would).
    """
    room = Channel.objects.filter(name=channel).first()
    if room is None:
        return []
    return Message.objects.filter(channel=room).order_by("-id")[: min(limit, 200)]


@query
def history(ctx: QueryCtx, channel: str, pagination_opts: PaginationOptions) -> Any:
    """Older messages page by page (``usePaginatedQuery``), newest first."""
    room = Channel.objects.filter(name=channel).first()
    messages = Message.objects.filter(channel=room).order_by("-id")
    return ctx.paginate(messages, pagination_opts)


@mutation
def send(ctx: MutationCtx, channel: str, body: str) -> str:
    body = body.strip()
    if not body:
        raise FunctionError({"code": "EMPTY", "message": "Write something first."})
    if not ctx.auth.user.is_authenticated:
        raise FunctionError({"code": "LOGIN_REQUIRED", "message": "Log in to send messages."})
    room, _ = Channel.objects.get_or_create(name=channel)
    message = Message.objects.create(channel=room, author=ctx.auth.user, body=body)
    return str(message.pk)


@mutation
def edit(ctx: MutationCtx, id: Id[Message], body: str) -> None:
    message = _own_message(ctx, id)
    message.body = body.strip() or message.body
    message.edited_at = timezone.now()
    message.save(update_fields=["body", "edited_at"])


@mutation
def remove(ctx: MutationCtx, id: Id[Message]) -> None:
    _own_message(ctx, id).delete()


def _own_message(ctx: MutationCtx, message_id: Any) -> Message:
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        raise FunctionError({"code": "NOT_FOUND"})
    if message.author_id != ctx.auth.user.pk:
        raise FunctionError(
            {"code": "FORBIDDEN", "message": "You can only change your own messages."}
        )
    return message
