"""Admin-only endpoints: the ``Authorization: Convex <admin key>`` check, allowed methods, and
``RequestError`` as a JSON ``{code, message}`` response."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from reactive.auth.identity import identity_from_header
from reactive.exceptions import AuthenticationError, BadRequest, RequestError

View = Callable[..., HttpResponseBase]


def admin_only(*methods: str) -> Callable[[View], View]:
    """Serve ``view`` to callers presenting the admin key, for ``methods`` only.

    No session cookies are read, so there is nothing for CSRF to forge (csrf_exempt).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if request.method not in methods:
                    raise BadRequest(
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        code="MethodNotAllowed", http_status=405,
                    )
                require_admin(request)
                return view(request, *args, **kwargs)
            except RequestError as exc:
                response = JsonResponse(
                    {"code": exc.code, "message": str(exc)}, status=exc.http_status
                )
                if exc.http_status == 405:
                    response["Allow"] = ", ".join(methods)
                return response

        return csrf_exempt(wrapper)

    return decorate


def require_admin(request: HttpRequest) -> None:
    header = request.headers.get("Authorization")
    if not header:
        raise AuthenticationError(
            "This endpoint needs the admin key: send 'Authorization: Convex <admin key>'."
        )
    identity = identity_from_header(header)
    if not identity.is_admin or identity.claims is not None:
        raise BadRequest(
            "This endpoint is for the admin key only (not a user token, nor an admin acting "
            "as a user).", code="Forbidden", http_status=403,
        )
