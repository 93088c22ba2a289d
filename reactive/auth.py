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
from .types import ANONYMOUS, Identity


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


def identity_from_admin_key(credentials: str) -> Identity:
    """Check an admin key (``key`` or ``key:<base64 JSON acting-as identity>``)."""
    configured = reactive_settings().ADMIN_KEY
    if not configured:
        raise AuthenticationError(
            "Admin keys are not enabled on this server: set REACTIVE['ADMIN_KEY']."
        )
    key, _, acting_as = credentials.partition(":")
    if not hmac.compare_digest(key.encode(), configured.encode()):
        raise AuthenticationError("The admin key is not valid.")
    if not acting_as:
        return Identity(is_admin=True)
    return Identity(is_admin=True, claims=_freeze(_decode_acting_as(acting_as)))


def identity_from_jwt(token: str) -> Identity:
    """Validate a user JWT against ``REACTIVE['AUTH_PROVIDERS']``."""
    if not reactive_settings().AUTH_PROVIDERS:
        raise AuthenticationError(
            "This server accepts no JWTs: configure REACTIVE['AUTH_PROVIDERS'] to validate "
            "tokens, or use the Django session."
        )
    raise AuthenticationError("JWT validation is not available yet on this server.")


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


def _freeze(claims: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    def freeze(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
        if isinstance(value, list):
            return tuple(freeze(v) for v in value)
        return value

    return tuple(sorted((str(k), freeze(v)) for k, v in claims.items()))
