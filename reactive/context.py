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
    from django.db.models import QuerySet

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

    ``token_identifier`` is ``"<issuer>|<subject>"`` and is stable per user. ``claims`` is
    Convex's ``UserIdentity`` object: ``tokenIdentifier``, ``subject``, ``issuer``, the OIDC
    profile claims camel-cased (``email``, ``emailVerified``, ``pictureUrl``, ...) and any
    custom claims; the token's protocol claims (``aud``, ``exp``, ``iat``...) are left out, as
    Convex does (``ctx.auth.identity.claims_dict()`` has them all).
    """

    token_identifier: str
    subject: str
    issuer: str
    claims: Mapping[str, Any]


# OIDC standard claims (OpenID Connect Core §5.1) and their names in Convex's UserIdentity.
CONVEX_CLAIM_NAMES = {
    "name": "name", "given_name": "givenName", "family_name": "familyName",
    "nickname": "nickname", "preferred_username": "preferredUsername", "profile": "profileUrl",
    "picture": "pictureUrl", "email": "email", "email_verified": "emailVerified",
    "gender": "gender", "birthdate": "birthday", "zoneinfo": "timezone", "locale": "language",
    "phone_number": "phoneNumber", "phone_number_verified": "phoneNumberVerified",
    "address": "address", "updated_at": "updatedAt",
}
# Claims about the token rather than the user (RFC 7519 §4.1, OIDC Core §2).
PROTOCOL_CLAIMS = frozenset({
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "acr", "amr", "azp",
    "at_hash", "c_hash",
})


def _user_identity(issuer: str, subject: str, attributes: Mapping[str, Any]) -> UserIdentity:
    token_identifier = f"{issuer}|{subject}"
    claims = {**attributes, "tokenIdentifier": token_identifier, "subject": subject,
              "issuer": issuer}
    return UserIdentity(token_identifier, subject, issuer, claims)


def _from_jwt(claims: Mapping[str, Any]) -> UserIdentity:
    attributes: dict[str, Any] = {}
    for name, value in claims.items():
        if name in PROTOCOL_CLAIMS:
            continue
        convex_name = CONVEX_CLAIM_NAMES.get(name, name)
        if convex_name in ("emailVerified", "phoneNumberVerified") and value in ("true", "false"):
            value = value == "true"  # some providers' templates render booleans as strings
        attributes[convex_name] = value
    return _user_identity(str(claims.get("iss", "")), str(claims.get("sub", "")), attributes)


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
        """The caller's identity, or None when anonymous (or using the admin key alone).

        A JWT caller gets the token's claims, an admin acting as a user that user's attributes
        (Convex's ``UserIdentityAttributes``), a session user ``issuer="django"`` and
        ``subject=str(user.pk)``. Reading it for a session user loads ``user``.
        """
        claims = self.identity.claims_dict()
        if claims is not None and self.identity.is_admin:
            attributes = {k: v for k, v in claims.items() if k != "tokenIdentifier"}
            return _user_identity(str(claims.get("issuer", "")),
                                  str(claims.get("subject", "")), attributes)
        if claims is not None:
            return _from_jwt(claims)
        user = self.user
        if not user.is_authenticated:
            return None
        attributes = {"preferredUsername": user.get_username()}
        email = getattr(user, "email", "")
        if email:
            attributes["email"] = email
        return _user_identity("django", str(user.pk), attributes)


class _BaseCtx:
    def __init__(self, identity: Identity, runner: Runner) -> None:
        self.auth = Auth(identity)
        self._runner = runner

    @property
    def identity(self) -> Identity:
        return self.auth.identity


class QueryCtx(_BaseCtx):
    """Context of a query: read with the ORM; ``run_query`` calls another query inline.

    ``paginate`` returns one reactive page of a queryset (see :mod:`reactive.pagination`).
    """

    def __init__(
        self, identity: Identity, runner: Runner, journal: list[str] | None = None
    ) -> None:
        super().__init__(identity, runner)
        self._journal_in = journal or []
        self.journal_out: list[str] = []

    def paginate(self, queryset: QuerySet[Any], pagination_opts: Mapping[str, Any]) -> Any:
        """A page ``{page, isDone, continueCursor, splitCursor?, pageStatus?}`` of ``queryset``.

        The queryset must be ordered by fields of its model (the pk is appended to make the
        order total). Re-runs of the same subscription keep the page's end, so consecutive
        pages stay gapless while rows come and go. Raises FunctionError with
        ``paginationError: "InvalidCursor"`` for a cursor that is not of this query.
        """
        from .pagination import paginate

        index = len(self.journal_out)
        pinned = self._journal_in[index] if index < len(self._journal_in) else None
        result, end = paginate(queryset, pagination_opts, pinned)
        self.journal_out.append(end)
        return result

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
