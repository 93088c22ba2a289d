"""Small value types shared by every layer: function kinds, visibility and caller identity."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class FunctionKind(enum.StrEnum):
    QUERY = "query"
    MUTATION = "mutation"
    ACTION = "action"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


Claims = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class FrozenObject:
    """A JSON object nested in frozen claims: its items sorted by key (lists become tuples).

    A distinct type, so that a frozen object never equals a frozen list of pairs."""

    items: Claims


@dataclass(frozen=True)
class Identity:
    """Who is calling: a Django user, verified token claims, the admin key, or nobody.

    Hashable and comparable, so identical subscriptions of the same caller can share one
    execution. ``claims`` holds the token's (or acting-as identity's) JSON claims as a tuple
    of items sorted by key, frozen by ``freeze_claims``; ``claims_dict()`` gives them back as
    plain dicts and lists.
    """

    user_id: str | None = None
    is_admin: bool = False
    claims: Claims | None = field(default=None)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None and self.claims is None and not self.is_admin

    def claims_dict(self) -> dict[str, Any] | None:
        if self.claims is None:
            return None
        return {key: _thaw(value) for key, value in self.claims}


def freeze_claims(claims: Mapping[str, Any]) -> Claims:
    """Freeze JSON claims for ``Identity.claims``: objects become ``FrozenObject``, lists
    tuples, recursively; the top level is a tuple of items sorted by key."""
    return tuple(sorted((str(key), _freeze(value)) for key, value in claims.items()))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenObject(freeze_claims(value))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenObject):
        return {key: _thaw(item) for key, item in value.items}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


ANONYMOUS = Identity()
ADMIN = Identity(is_admin=True)
