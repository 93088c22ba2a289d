"""The peer: a DCRF model observer pushing each new Message to the sockets that subscribed to
its channel (DCRF's documented pattern: one group per channel, serialized once per event)."""

from __future__ import annotations

from typing import Any

from djangochannelsrestframework.consumers import AsyncAPIConsumer
from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.observer import model_observer

from tests.testapp.models import Message


class MessageConsumer(AsyncAPIConsumer):
    @model_observer(Message)
    async def message_activity(self, message: dict[str, Any], observer: Any = None,
                               **kwargs: Any) -> None:
        await self.send_json(message)

    @message_activity.groups_for_signal
    def message_activity(self, instance: Message, **kwargs: Any) -> Any:
        yield f"message-{instance.channel}"

    @message_activity.groups_for_consumer
    def message_activity(self, channel: str | None = None, **kwargs: Any) -> Any:
        if channel is not None:
            yield f"message-{channel}"

    @message_activity.serializer
    def message_activity(self, instance: Message, action: Any, **kwargs: Any) -> dict[str, Any]:
        return {"id": instance.pk, "channel": instance.channel, "body": instance.body,
                "action": action.value}

    @action()
    async def subscribe(self, channel: str, request_id: Any, **kwargs: Any) -> Any:
        await self.message_activity.subscribe(channel=channel, request_id=request_id)
        return {"channel": channel}, 200
