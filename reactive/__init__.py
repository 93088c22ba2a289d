"""django-reactivity: Convex-style reactive queries, mutations and actions for Django.

Import what ``functions.py`` modules use from here; everything else by its module path.
"""

from __future__ import annotations

from . import crons
from .arguments import Id
from .context import ActionCtx, MutationCtx, QueryCtx, SyncActionCtx, UserIdentity
from .definitions import (
    FunctionDefinition,
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from .exceptions import FunctionError

__all__ = [
    "ActionCtx",
    "FunctionDefinition",
    "FunctionError",
    "Id",
    "MutationCtx",
    "QueryCtx",
    "SyncActionCtx",
    "UserIdentity",
    "action",
    "crons",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "query",
]
