"""The Convex HTTP API (``/api/query``, ``/api/mutation``, ``/api/action``, ``/api/function``,
``/api/run/<path>``, ``/api/query_ts``, ``/api/query_at_ts``), as ``ConvexHttpClient`` calls it.

Function outcomes are HTTP 200 with ``status: success|error``; caller errors are 4xx with
``{"code", "message"}`` (this module decides the status). See docs/reference/http-api.md.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from reactive import values
from reactive.clock import clock
from reactive.exceptions import (
    AuthenticationError,
    BadRequest,
    FunctionNotFound,
    RequestError,
    ValueDecodingError,
)
from reactive.functions.arguments import decode_wire_args
from reactive.functions.runtime import Call, Outcome, runtime
from reactive.http.plumbing import api_view, caller_identity, read_json
from reactive.types import FunctionKind

ENCODED_FORMATS = {None, "convex_encoded_json", "convex_json"}
MAX_TS_SKEW_NS = 60 * 10**9  # another server's clock may run a little ahead of ours
CLEAN_FORMATS = {"json", "convex_clean_json"}
# The status of a caller error, by its code; any other caller error is a 400.
CALLER_ERROR_STATUS = {
    error.code: error.http_status for error in (FunctionNotFound, AuthenticationError)
}


@api_view
@transaction.non_atomic_requests
def call_function(request: HttpRequest, kind: str | None = None) -> HttpResponse:
    """``POST /api/<kind>`` (kind: query, mutation, action) and ``POST /api/function``."""
    body = _object(read_json(request))
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise BadRequest("The request body needs a 'path' string naming the function.")
    return _call(request, body, path, FunctionKind(kind) if kind else None, "convex_encoded_json")


@api_view
@transaction.non_atomic_requests
def run_by_path(request: HttpRequest, path: str) -> HttpResponse:
    """``POST /api/run/<dir>/<file>/<fn>``: any function kind, clean JSON by default."""
    body = _object(read_json(request))
    module, _, export = path.strip("/").rpartition("/")
    if not module or not export:
        raise BadRequest(f"'/api/run/{path}' must name a module and a function: /api/run/chat/list")
    return _call(request, body, f"{module}:{export}", None, "json")


@api_view
def query_ts(request: HttpRequest) -> HttpResponse:
    """``POST /api/query_ts``: the latest timestamp, for ``consistentQuery``."""
    return JsonResponse({"ts": values.encode_ts(clock.now())})


@api_view
@transaction.non_atomic_requests
def query_at_ts(request: HttpRequest) -> HttpResponse:
    """``POST /api/query_at_ts``: a query at a timestamp.

    Postgres keeps no old snapshots to read at, so the query runs at the newest snapshot,
    which is never older than the requested ts; a ts from the future is refused.
    """
    body = _object(read_json(request))
    raw_ts = body.get("ts")
    try:
        ts = values.decode_ts(raw_ts) if isinstance(raw_ts, str) else None
    except ValueDecodingError as exc:
        raise BadRequest(f"'ts' is not a valid timestamp: {exc}") from None
    if ts is None or ts > clock.now() + MAX_TS_SKEW_NS:
        raise BadRequest("'ts' must be a timestamp returned by /api/query_ts.")
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise BadRequest("The request body needs a 'path' string naming the function.")
    return _call(request, body, path, FunctionKind.QUERY, "convex_encoded_json")


def _call(
    request: HttpRequest, body: dict[str, Any], path: str, kind: FunctionKind | None, fmt: str
) -> HttpResponse:
    fmt = _format(body, default=fmt)
    args = decode_wire_args(body.get("args"), encoded=fmt in ENCODED_FORMATS)
    outcome = runtime.call(Call(path, args, caller_identity(request), expect=kind))
    return _response(outcome, clean=fmt in CLEAN_FORMATS)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _format(body: dict[str, Any], *, default: str) -> str:
    fmt = body.get("format", default)
    if fmt not in ENCODED_FORMATS | CLEAN_FORMATS:
        raise BadRequest(
            f"Unknown format {fmt!r}: use 'convex_encoded_json' or 'json'.", code="BadFormat"
        )
    return str(fmt)


def _response(outcome: Outcome, *, clean: bool) -> HttpResponse:
    if outcome.caller_error:
        return JsonResponse(
            {"code": outcome.code, "message": outcome.error}, status=status_of(outcome)
        )
    if outcome.ok:
        value = values.to_clean_json(values.decode(outcome.value)) if clean else outcome.value
        return JsonResponse({"status": "success", "value": value, "logLines": outcome.log_lines})
    body: dict[str, Any] = {
        "status": "error", "errorMessage": outcome.error, "logLines": outcome.log_lines
    }
    if outcome.has_error_data:
        body["errorData"] = outcome.error_data
    return JsonResponse(body)


def status_of(outcome: Outcome) -> int:
    """The HTTP status of an outcome: 200 for a function's success or failure (the body says
    which), the error's own 4xx when the caller was at fault."""
    if not outcome.caller_error:
        return 200
    return CALLER_ERROR_STATUS.get(outcome.code or "", RequestError.http_status)
