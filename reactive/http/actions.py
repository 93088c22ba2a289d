"""Serving HTTP actions: match the route, answer CORS preflights, 404/405, resolve the caller,
run the handler (sync or async) with an action context, and turn a crash into a 500."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from reactive.conf import reactive_settings
from reactive.exceptions import RequestError
from reactive.functions import logs
from reactive.functions.context import ActionCtx, SyncActionCtx
from reactive.functions.http_actions import HttpAction, routes
from reactive.functions.runtime import runtime
from reactive.functions.transaction import action_scope, in_thread
from reactive.http.plumbing import caller_identity, check_csrf, error_response, with_cors
from reactive.types import Identity

logger = logging.getLogger(__name__)


@csrf_exempt  # cookie-authenticated unsafe requests get Django's CSRF check in check_csrf
@transaction.non_atomic_requests
async def serve(request: HttpRequest, route: str) -> HttpResponseBase:
    """The view behind ``<HTTP_ACTIONS_PREFIX><route>``."""
    method = request.method or "GET"
    action, allowed = routes.match("/" + route, method)
    if method == "OPTIONS" and allowed:
        cors = any(a.cors for a in _at(route))
        return _cors(request, HttpResponse(status=204), allowed, preflight=True) if cors \
            else HttpResponse(status=204, headers={"Allow": _allow(allowed)})
    if action is None:
        if not allowed:
            return JsonResponse({"code": "NotFound", "message": f"No HTTP action at /{route}."},
                                status=404)
        refused = JsonResponse(
            {"code": "MethodNotAllowed",
             "message": f"{method} is not allowed here; use {_allow(allowed)}."}, status=405,
        )
        refused["Allow"] = _allow(allowed)
        return _cors(request, refused, allowed)
    response: HttpResponseBase
    try:
        identity = await sync_to_async(_caller)(request)
        response = await _run(action, identity, request)
    except RequestError as exc:
        response = error_response(exc)
    return _cors(request, response, allowed) if action.cors else response


def _caller(request: HttpRequest) -> Identity:
    check_csrf(request)
    return caller_identity(request)


async def _run(action: HttpAction, identity: Identity, request: HttpRequest) -> HttpResponseBase:
    """Run the handler; what it logs and how it ended go to the call listeners (log stream,
    metrics) like any function call's."""
    try:
        with logs.reported(action.name, identity, kind="httpAction"):
            if action.is_async:
                with action_scope(action.name):
                    response = await action.func(ActionCtx(identity, runtime), request)
            else:
                response = await in_thread(_run_sync, action, SyncActionCtx(identity, runtime),
                                           request)
            if not isinstance(response, HttpResponseBase):
                raise TypeError(
                    f"HTTP action {action.name} returned {type(response).__name__}, not an "
                    "HttpResponse."
                )
    except Exception as exc:
        return _crashed(action, exc)
    return response


def _run_sync(action: HttpAction, ctx: SyncActionCtx, request: HttpRequest) -> Any:
    with action_scope(action.name):
        return action.func(ctx, request)


def _crashed(action: HttpAction, exc: Exception) -> JsonResponse:
    request_id = uuid.uuid4().hex[:16]
    logger.error("http action crashed action=%s request_id=%s", action.name, request_id,
                 exc_info=exc)
    message = f"[Request ID: {request_id}] Server Error"
    configured = reactive_settings().EXPOSE_ERROR_DETAILS
    if bool(settings.DEBUG) if configured is None else configured:
        message += f"\nUncaught {type(exc).__name__}: {exc}"
    return JsonResponse({"code": "InternalServerError", "message": message}, status=500)


def _at(route: str) -> list[HttpAction]:
    return [a for a in routes if a.matches("/" + route)]


def _allow(allowed: frozenset[str]) -> str:
    methods = set(allowed) | {"OPTIONS"} | ({"HEAD"} if "GET" in allowed else set())
    return ", ".join(sorted(methods))


def _cors(
    request: HttpRequest, response: HttpResponseBase, allowed: frozenset[str], *,
    preflight: bool = False,
) -> HttpResponseBase:
    response = with_cors(request, response, preflight=preflight)
    if preflight and response.has_header("Access-Control-Allow-Methods"):
        response["Access-Control-Allow-Methods"] = _allow(allowed)
    return response
