"""The ``ctx`` object a function receives: ``QueryCtx``, ``MutationCtx``, ``ActionCtx`` (for
``async def`` actions) and ``SyncActionCtx``, with ``ctx.auth``.

Contexts call other functions through a ``Runner`` the runtime hands them, which keeps this
module below the runtime in the layering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from .scheduler import AsyncScheduler, Scheduler
from .types import FunctionKind, Identity

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from .definitions import FunctionDefinition

    FunctionRef = str | FunctionDefinition[Any, Any]


class Runner(Protocol):
    """How a context calls another function (implemented by :mod:`reactive.runtime`)."""

    def run(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity, *,
        expect: FunctionKind | None = ...,
    ) -> Any: ...

    async def arun(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity, *,
        expect: FunctionKind | None = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class UserIdentity:
    """The verified identity of the caller, as Convex's ``ctx.auth.getUserIdentity()`` gives it.

    ``token_identifier`` is ``"<issuer>|<subject>"`` and is stable per user; ``claims`` holds
    every claim of a JWT (or the Django user's basic fields for session users).
    """

    token_identifier: str
    subject: str
    issuer: str
    claims: Mapping[str, Any]


class Auth:
    """``ctx.auth``: who is calling. ``user`` is loaded lazily, inside the function's
    transaction, so a query that reads it also depends on it."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    @cached_property
    def user(self) -> AbstractBaseUser | AnonymousUser:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        if self.identity.user_id is None:
            return AnonymousUser()
        model = get_user_model()
        try:
            return model._default_manager.get(pk=self.identity.user_id)
        except model.DoesNotExist:
            return AnonymousUser()

    @property
    def is_admin(self) -> bool:
        return self.identity.is_admin

    def get_user_identity(self) -> UserIdentity | None:
        """The caller's identity, or None when anonymous (or using the admin key alone)."""
        claims = self.identity.claims_dict()
        if claims is not None:
            issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
            return UserIdentity(f"{issuer}|{subject}", subject, issuer, claims)
        user = self.user
        if not user.is_authenticated:
            return None
        subject = str(user.pk)
        fields = {"sub": subject, "iss": "django", "username": user.get_username()}
        email = getattr(user, "email", "")
        if email:
            fields["email"] = email
        return UserIdentity(f"django|{subject}", subject, "django", fields)


class _BaseCtx:
    def __init__(self, identity: Identity, runner: Runner) -> None:
        self.auth = Auth(identity)
        self._runner = runner

    @property
    def identity(self) -> Identity:
        return self.auth.identity


class QueryCtx(_BaseCtx):
    """Context of a query: read with the ORM; ``run_query`` calls another query inline."""

    def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.QUERY)


class MutationCtx(QueryCtx):
    """Context of a mutation: read and write with the ORM in one SERIALIZABLE transaction.

    ``run_mutation`` runs another mutation inside the same transaction; ``scheduler`` writes
    jobs in it too, so they exist only if the mutation commits.
    """

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler()

    def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.MUTATION)


class ActionCtx(_BaseCtx):
    """Context of an ``async def`` action: no transaction; call queries, mutations and actions.

    Each ``run_*`` awaits a separate function call with its own transaction;
    ``await ctx.scheduler.run_after(...)`` commits each job on its own.
    """

    @cached_property
    def scheduler(self) -> AsyncScheduler:
        return AsyncScheduler()

    async def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.QUERY)

    async def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.MUTATION)

    async def run_action(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.ACTION)


class SyncActionCtx(_BaseCtx):
    """Context of a plain ``def`` action: like ``ActionCtx`` with blocking calls."""

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler()

    def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.QUERY)

    def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.MUTATION)

    def run_action(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.ACTION)
