"""HTTP plumbing for the API views: method and size checks, JSON bodies, CORS, the CSRF rule
for cookie-authenticated calls, caller identity and error responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from reactive.auth.identity import identity_from_header, identity_from_user
from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest, RequestError
from reactive.types import Identity

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]
R = TypeVar("R", bound=HttpResponseBase)
ALLOWED_HEADERS = "Authorization, Content-Type, Convex-Client"


def api_view(view: View) -> View:
    """Wrap an API view: POST only, CORS, CSRF rule, and RequestError → JSON 4xx.

    The view is CSRF-exempt for Django's middleware because it applies its own rule: a
    request authenticated by the session cookie (no ``Authorization`` header) must carry the
    ``Convex-Client`` header, which browsers cannot send cross-site without a CORS preflight
    that only ``REACTIVE['CORS_ALLOWED_ORIGINS']`` pass, or else a valid Django CSRF token.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            return with_cors(request, HttpResponse(status=204), preflight=True)
        try:
            if request.method != "POST":
                raise BadRequest(
                    f"{request.method} is not allowed here; use POST.",
                    code="MethodNotAllowed", http_status=405,
                )
            check_csrf(request)
            response = view(request, *args, **kwargs)
        except RequestError as exc:
            response = error_response(exc)
        return with_cors(request, response)

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]
    return csrf_exempt(wrapper)


def error_response(exc: RequestError) -> JsonResponse:
    response = JsonResponse({"code": exc.code, "message": str(exc)}, status=exc.http_status)
    if exc.http_status == 405:
        response["Allow"] = "POST, OPTIONS"
    return response


def read_json(request: HttpRequest) -> Any:
    """The request's JSON body, checked for content type, size and syntax."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise BadRequest(
            f"Expected Content-Type: application/json, got {content_type or 'none'!r}.",
            code="UnsupportedMediaType", http_status=415,
        )
    limit = reactive_settings().HTTP_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # Read the stream ourselves: request.body would apply DATA_UPLOAD_MAX_MEMORY_SIZE instead.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    if not body.strip():
        return None
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.", code="BadJson") from None


def caller_identity(request: HttpRequest) -> Identity:
    """The caller: the Authorization header if present, else the Django session user."""
    header = request.headers.get("Authorization")
    if header is not None:
        return identity_from_header(header)
    return identity_from_user(getattr(request, "user", None))


def with_cors(request: HttpRequest, response: R, *, preflight: bool = False) -> R:
    origin = request.headers.get("Origin")
    allowed = reactive_settings().CORS_ALLOWED_ORIGINS
    if origin and origin in allowed:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = "Origin"
    elif origin and "*" in allowed:
        # Any origin, but never with cookies: that would let every site act as the user.
        response["Access-Control-Allow-Origin"] = "*"
    if preflight and response.has_header("Access-Control-Allow-Origin"):
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = str(reactive_settings().CORS_MAX_AGE)
    return response


def check_csrf(request: HttpRequest) -> None:
    """Django's CSRF check for a request authenticated only by the session cookie."""
    if "Authorization" in request.headers or "Convex-Client" in request.headers:
        return
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return
    middleware = CsrfViewMiddleware(lambda r: HttpResponse())
    rejection = middleware.process_view(request, _no_view, (), {})
    if rejection is not None:
        raise BadRequest(
            "CSRF check failed for a cookie-authenticated request: send the Convex-Client "
            "header (the official clients do) or Django's CSRF token.",
            code="CsrfFailed", http_status=403,
        )


def _no_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def _too_large(limit: int) -> BadRequest:
    return BadRequest(
        f"The request body is larger than {limit} bytes "
        "(REACTIVE['HTTP_MAX_BODY_BYTES']).",
        code="PayloadTooLarge", http_status=413,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; send it as {{\"$float\": ...}}")
