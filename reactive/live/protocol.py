"""Wire shapes of the Convex sync protocol: parsing client messages and building server ones.

Incoming messages are validated with pydantic into the frozen models below; anything else is
a ``ProtocolError`` (a client bug: the connection answers with FatalError). Outgoing messages are
plain dicts ready for ``json.dumps``. See docs/reference/protocol.md and convex-protocol.md §4.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from reactive import values
from reactive.exceptions import ProtocolError as ProtocolError  # also named protocol.ProtocolError

_VERSIONED_PATH = re.compile(r"/api/(\d+)\.(\d+)\.(\d+)[^/]*/sync$")

if TYPE_CHECKING:
    from reactive.functions.runtime import Outcome


class _Message(BaseModel):
    # strict: JSON's types as sent, no coercion ("1" or true is not a requestId).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


NonNegative = Annotated[int, Field(ge=0, le=2**53)]


class Connect(_Message):
    type: Literal["Connect"]
    sessionId: str = Field(min_length=1, max_length=128)
    connectionCount: NonNegative = 0
    lastCloseReason: str | None = None
    clientTs: NonNegative | None = None
    maxObservedTimestamp: str | None = None


class AddQuery(_Message):
    type: Literal["Add"]
    queryId: NonNegative
    udfPath: str = Field(min_length=1, max_length=512)
    args: list[Any] = Field(default_factory=list)
    journal: str | None = Field(default=None, max_length=65536)
    componentPath: str | None = None


class RemoveQuery(_Message):
    type: Literal["Remove"]
    queryId: NonNegative


Modification = Annotated[AddQuery | RemoveQuery, Field(discriminator="type")]


class ModifyQuerySet(_Message):
    type: Literal["ModifyQuerySet"]
    baseVersion: NonNegative
    newVersion: NonNegative
    modifications: list[Modification]


class _Request(_Message):
    requestId: NonNegative
    udfPath: str = Field(min_length=1, max_length=512)
    args: list[Any] = Field(default_factory=list)
    componentPath: str | None = None


class Mutation(_Request):
    type: Literal["Mutation"]


class Action(_Request):
    type: Literal["Action"]


class Authenticate(_Message):
    type: Literal["Authenticate"]
    baseVersion: NonNegative
    tokenType: Literal["User", "Admin", "None"]
    value: str | None = Field(default=None, max_length=65536)
    impersonating: dict[str, Any] | None = None


class Event(_Message):
    type: Literal["Event"]


ClientMessage = Annotated[
    Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event,
    Field(discriminator="type"),
]
_client_message: TypeAdapter[Any] = TypeAdapter(ClientMessage)


def parse(data: Any) -> Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event:
    """Validate one decoded JSON message; raise ProtocolError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("Every message must be a JSON object with a string 'type'.")
    try:
        return _client_message.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in problem["loc"])
        prefix = f"{where}: " if where else ""
        raise ProtocolError(f"Invalid {data['type']} message: {prefix}{problem['msg']}.") from None


# -- server → client --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateVersion:
    query_set: int
    identity: int
    ts: int

    def wire(self) -> dict[str, Any]:
        return {"querySet": self.query_set, "identity": self.identity,
                "ts": values.encode_ts(self.ts)}


INITIAL_VERSION = StateVersion(0, 0, 0)


# A message is a dict, or text already encoded (a Transition whose results are shared by
# many sessions is assembled from pre-encoded parts instead of encoded once per session).
Outgoing = dict[str, Any] | str


def transition(
    start: StateVersion, end: StateVersion, modifications: list[Outgoing], server_ts: int
) -> str:
    """A Transition as JSON text; ``modifications`` may hold pre-encoded text.

    Built per session by a round (the versions differ), so it only joins text: the shared
    parts are encoded once (:func:`query_updated_parts`, the timestamps through a cache).
    """
    parts = ",".join(m if isinstance(m, str) else dumps(m) for m in modifications)
    return (f'{{"type":"Transition","startVersion":{_version_text(start)},'
            f'"endVersion":{_version_text(end)},"modifications":[{parts}],'
            f'"serverTs":{server_ts}}}')


def _version_text(version: StateVersion) -> str:
    # As dumps(version.wire()), without a dict and an encoder call per session.
    return (f'{{"querySet":{version.query_set},"identity":{version.identity},'
            f'"ts":{_ts_text(version.ts)}}}')


@functools.lru_cache(maxsize=64)
def _ts_text(ts: int) -> str:
    """A timestamp's JSON text; a round's sessions share one or two of them."""
    return dumps(values.encode_ts(ts))


def transition_chunks(text: str, part_chars: int) -> list[str]:
    """A Transition's JSON text as TransitionChunk messages of at most ``part_chars`` of it
    each (npm clients >= 1.28 join the parts, in order, and parse the whole)."""
    parts = [text[i:i + part_chars] for i in range(0, len(text), part_chars)]
    transition_id = uuid.uuid4().hex
    return [f'{{"type":"TransitionChunk","chunk":{dumps(part)},"partNumber":{n},'
            f'"totalParts":{len(parts)},"transitionId":"{transition_id}"}}'
            for n, part in enumerate(parts)]


def chunking_client(path: str) -> bool:
    """Whether the client behind a sync URL path accepts TransitionChunk: the npm client
    (``/api/<version>/sync``) from 1.28.0 on. The Python client (``/api/sync``) never does."""
    match = _VERSIONED_PATH.search(path)
    if match is None:
        return False
    return tuple(int(part) for part in match.groups()) >= (1, 28, 0)


def query_updated_tail(value_text: str, journal: str | None, log_lines: list[str]) -> str:
    """Everything of a QueryUpdated after its queryId: the same for every session holding
    the query, so encoded once per result and joined per session by :func:`query_updated`."""
    return (f',"value":{value_text},"logLines":{dumps(log_lines)},'
            f'"journal":{dumps(journal)}}}')


def query_updated(query_id: int, tail: str) -> str:
    return f'{{"type":"QueryUpdated","queryId":{query_id}{tail}'


def dumps(message: Any) -> str:
    """Compact JSON, as every outgoing frame is encoded."""
    return json.dumps(message, separators=(",", ":"))


def query_failed(query_id: int, message: str, journal: str | None, log_lines: list[str],
                 error_data: Any = None, has_error_data: bool = False) -> dict[str, Any]:
    out = {"type": "QueryFailed", "queryId": query_id, "errorMessage": message,
           "logLines": log_lines, "journal": journal}
    if has_error_data:
        out["errorData"] = error_data
    return out


def query_removed(query_id: int) -> dict[str, Any]:
    return {"type": "QueryRemoved", "queryId": query_id}


def function_response(kind: Literal["MutationResponse", "ActionResponse"], request_id: int, *,
                      ok: bool, value: Any, log_lines: list[str], ts: int | None = None,
                      error_data: Any = None, has_error_data: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "requestId": request_id, "success": ok,
                           "result": value, "logLines": log_lines}
    if ts is not None:
        out["ts"] = values.encode_ts(ts)
    if has_error_data:
        out["errorData"] = error_data
    return out


def outcome_response(kind: Literal["MutationResponse", "ActionResponse"], request_id: int,
                     outcome: Outcome, ts: int | None = None) -> dict[str, Any]:
    """The response to a finished mutation or action; ``ts`` only when a mutation committed."""
    if not outcome.ok:
        return function_response(kind, request_id, ok=False, value=outcome.error,
                                 log_lines=outcome.log_lines, error_data=outcome.error_data,
                                 has_error_data=outcome.has_error_data)
    return function_response(kind, request_id, ok=True, value=outcome.value,
                             log_lines=outcome.log_lines, ts=ts)


def auth_error(message: str, base_version: int, attempted: bool) -> dict[str, Any]:
    return {"type": "AuthError", "error": message, "baseVersion": base_version,
            "authUpdateAttempted": attempted}


def fatal_error(message: str) -> dict[str, Any]:
    return {"type": "FatalError", "error": message}


PING: dict[str, Any] = {"type": "Ping"}
