"""Who is calling: turns an ``Authorization`` header or a Django session into an ``Identity``.

Header forms (Convex's): ``Convex <admin key>`` (optionally ``:<base64 JSON identity>`` to act
as a user) and ``Bearer <JWT>``. Without a header, the Django session user, if any.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any

from .conf import reactive_settings
from .exceptions import AuthenticationError
from .jwt import verify
from .types import ANONYMOUS, Identity, freeze_claims


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
    """Validate a user JWT against ``REACTIVE['AUTH_PROVIDERS']`` (see :func:`reactive.jwt.verify`).

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
