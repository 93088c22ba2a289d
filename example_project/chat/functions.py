"""The chat's functions: `chat:channels`, `chat:list`, `chat:send`, `chat:edit`, `chat:remove`."""

from typing import Any

from django.utils import timezone

from reactive import FunctionError, Id, MutationCtx, QueryCtx, mutation, query

from .models import Channel, Message


@query
def channels(ctx: QueryCtx) -> Any:
    return Channel.objects.order_by("name")


@query
def list(ctx: QueryCtx, channel: str, limit: int = 50) -> Any:
    """The newest messages of a channel, newest first."""
    return Message.objects.filter(channel__name=channel).order_by("-id")[: min(limit, 200)]


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
