"""``GET /api/stream_function_logs?cursor=N`` (admin key): every process's log stream as ``npx
convex logs`` polls it, ``{entries, newCursor}``, waiting briefly when nothing is new; and
``GET /api/metrics`` (``METRICS_ENABLED``; admin key or a staff session): Prometheus text."""

from __future__ import annotations

import asyncio
import hmac

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from reactive.conf import reactive_settings
from reactive.observability.logstream import stream

LONG_POLL_SECONDS = 5.0
POLL_INTERVAL = 0.25  # a query on the shared table each time


@csrf_exempt
async def stream_function_logs(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        response = JsonResponse({"code": "MethodNotAllowed", "message": "Use GET."}, status=405)
        response["Allow"] = "GET"
        return response
    if not _is_admin(request.headers.get("Authorization", "")):
        return JsonResponse({"code": "Unauthenticated", "message": "This endpoint needs the "
                             "admin key: 'Authorization: Convex <admin key>'."}, status=401)
    raw = request.GET.get("cursor", "0")
    try:
        cursor = int(raw)
    except ValueError:
        return JsonResponse({"code": "BadCursor", "message": "'cursor' must be a number."},
                            status=400)
    if cursor < 0 or cursor >= 2**63:
        return JsonResponse({"code": "BadCursor", "message": "'cursor' must be a "
                             "newCursor this endpoint returned, or 0."}, status=400)
    read = sync_to_async(stream.since)
    deadline = asyncio.get_running_loop().time() + LONG_POLL_SECONDS
    entries, new_cursor = await read(cursor)
    while not entries and cursor > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(POLL_INTERVAL)
        entries, new_cursor = await read(cursor)
    return JsonResponse({"entries": entries, "newCursor": new_cursor})


def _is_admin(header: str) -> bool:
    # Admin key only, checked here without blocking the event loop (no JWT verification).
    scheme, _, key = header.strip().partition(" ")
    configured = reactive_settings().ADMIN_KEY
    return (scheme.lower() == "convex" and bool(configured) and ":" not in key
            and hmac.compare_digest(key.strip().encode(), str(configured).encode()))


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of the default registry (ours and the project's metrics), or
    of every process's in ``prometheus_client``'s multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from reactive.observability.metrics import exposition_registry

    if not reactive_settings().METRICS_ENABLED:
        raise Http404("Metrics are off: set REACTIVE['METRICS_ENABLED'] = True.")
    user = getattr(request, "user", None)
    header = request.headers.get("Authorization", "")
    if not (_is_admin(header) or (user is not None and user.is_active and user.is_staff)):
        return JsonResponse({"code": "Unauthenticated", "message": "Metrics need the admin key "
                             "('Authorization: Convex <admin key>') or a staff login."},
                            status=401)
    return HttpResponse(generate_latest(exposition_registry()),
                        content_type=CONTENT_TYPE_LATEST)
