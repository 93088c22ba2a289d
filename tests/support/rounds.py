"""Driving a Reactor's rounds in the test process: sessions played by a handle that keeps what
the round delivers, and ``step``, one round with the events given."""

from __future__ import annotations

import json
from typing import Any

from reactive.live import protocol
from reactive.live.inbox import InboxEvent
from reactive.live.reactor import Reactor


class Session:
    """A fake session handle: keeps every message the round delivers, decoded."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def deliver(self, messages: list[protocol.Outgoing]) -> None:
        self.messages += [json.loads(m) if isinstance(m, str) else m for m in messages]

    def updates(self) -> dict[int, Any]:
        """The latest QueryUpdated value per query id."""
        out: dict[int, Any] = {}
        for message in self.messages:
            for change in message.get("modifications", []):
                if change["type"] == "QueryUpdated":
                    out[change["queryId"]] = change["value"]
        return out


def step(reactor: Reactor, *events: InboxEvent) -> None:
    for handle, messages in reactor.run_round(list(events)):
        handle.deliver(messages)
