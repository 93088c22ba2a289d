"""Small value types shared by every layer: function kinds, visibility and caller identity."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FunctionKind(enum.StrEnum):
    QUERY = "query"
    MUTATION = "mutation"
    ACTION = "action"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Identity:
    """Who is calling: a Django user, verified token claims, the admin key, or nobody.

    Hashable and comparable, so identical subscriptions of the same caller can share one
    execution. ``claims`` is a tuple of sorted items so that the whole value stays hashable.
    """

    user_id: str | None = None
    is_admin: bool = False
    claims: tuple[tuple[str, Any], ...] | None = field(default=None)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None and self.claims is None and not self.is_admin

    def claims_dict(self) -> dict[str, Any] | None:
        return dict(self.claims) if self.claims is not None else None


ANONYMOUS = Identity()
ADMIN = Identity(is_admin=True)
