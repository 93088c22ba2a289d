"""Who is calling: an ``Authorization`` header, admin key, JWT or Django user made into an
``Identity``, and ``ctx.auth`` (``Auth``, ``UserIdentity``) that functions read it through.

Header forms (Convex's): ``Convex <admin key>`` (optionally ``:<base64 JSON identity>`` to act
as a user) and ``Bearer <JWT>``. Without a header, the Django session user, if any.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from reactive.auth.jwt import verify
from reactive.conf import reactive_settings
from reactive.exceptions import AuthenticationError
from reactive.types import ANONYMOUS, Identity, freeze_claims

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser


def identity_from_header(header: str) -> Identity:
    """Parse an ``Authorization`` header value; raise AuthenticationError when it is invalid."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "convex" and credentials:
        return identity_from_admin_key(credentials)
    if scheme.lower() == "bearer" and credentials:
        return identity_from_jwt(credentials)
    raise AuthenticationError(
        "The Authorization header must be 'Bearer <token>' or 'Convex <admin key>'."
    )


def identity_from_admin_key(
    credentials: str, acting_as: Mapping[str, Any] | None = None
) -> Identity:
    """Check an admin key (``key`` or ``key:<base64 JSON acting-as identity>``).

    ``acting_as`` (the sync protocol's ``impersonating``) makes the admin act as that user:
    Convex's ``UserIdentityAttributes``, with string ``subject`` and ``issuer``; its
    ``tokenIdentifier`` is derived from them, as Convex does.
    """
    configured = reactive_settings().ADMIN_KEY
    if not configured:
        raise AuthenticationError(
            "Admin keys are not enabled on this server: set REACTIVE['ADMIN_KEY']."
        )
    key, _, encoded = credentials.partition(":")
    if not hmac.compare_digest(key.encode(), configured.encode()):
        raise AuthenticationError("The admin key is not valid.")
    if encoded:
        acting_as = _decode_acting_as(encoded)
    if not acting_as:
        return Identity(is_admin=True)
    for required in ("subject", "issuer"):
        if not isinstance(acting_as.get(required), str) or not acting_as[required]:
            raise AuthenticationError(
                f"The acting-as identity needs a non-empty string '{required}' (Convex's "
                "UserIdentityAttributes)."
            )
    return Identity(is_admin=True, claims=freeze_claims(acting_as))


def identity_from_jwt(token: str) -> Identity:
    """Validate a user JWT against ``REACTIVE["AUTH_PROVIDERS"]`` (see ``auth.jwt.verify``).

    The identity carries the token's claims and no Django user: ``ctx.auth.user`` stays
    anonymous for JWT callers. Blocking (it may fetch the issuer's keys); raises
    AuthenticationError.
    """
    return Identity(claims=freeze_claims(verify(token)))


def identity_from_user(user: Any) -> Identity:
    """The identity of a Django user (anonymous users and None give the anonymous identity)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return Identity(user_id=str(user.pk))


def session_identity(session_key: str) -> Identity:
    """The identity a request carrying this session cookie would get now, by Django's own
    machinery (blocking): the session must exist and not be expired, its user exist and pass
    the auth backend (``is_active`` for ``ModelBackend``), and the session's auth hash match
    the user's (a password change logs other sessions out). Else anonymous."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return identity_from_user(get_user(request))


def _decode_acting_as(encoded: str) -> Mapping[str, Any]:
    try:
        data = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AuthenticationError(
            "The acting-as identity after the admin key must be base64-encoded JSON."
        ) from None
    if not isinstance(data, dict):
        raise AuthenticationError("The acting-as identity must be a JSON object.")
    return data


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
