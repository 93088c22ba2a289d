"""django-reactivity: Convex-style reactive queries, mutations and actions for Django.

Import what ``functions.py`` and ``crons.py`` modules use from here; everything else by its
module path (see the reference docs). Importing this package never imports models.
"""

from __future__ import annotations

from reactive import compat
from reactive.auth.identity import UserIdentity
from reactive.datamigrations.definitions import migration
from reactive.exceptions import FunctionError
from reactive.functions.arguments import Id
from reactive.functions.context import ActionCtx, MutationCtx, QueryCtx, SyncActionCtx
from reactive.functions.definitions import (
    FunctionDefinition,
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from reactive.functions.http_actions import HttpAction, http_action
from reactive.reactions.definitions import Change, on_change
from reactive.scheduling import crons
from reactive.scheduling.retry import retry

compat.install()


def __getattr__(name: str) -> object:
    """``reactive.StoredFile``, imported on first use: models need the app registry ready."""
    if name == "StoredFile":
        from reactive.models import StoredFile

        return StoredFile
    raise AttributeError(f"module 'reactive' has no attribute {name!r}")


__all__ = [
    "ActionCtx",
    "Change",
    "FunctionDefinition",
    "FunctionError",
    "HttpAction",
    "Id",
    "MutationCtx",
    "QueryCtx",
    "StoredFile",
    "SyncActionCtx",
    "UserIdentity",
    "action",
    "crons",
    "http_action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "migration",
    "mutation",
    "on_change",
    "query",
    "retry",
]
