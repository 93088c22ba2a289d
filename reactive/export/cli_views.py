"""The HTTP endpoints of the CLI's ``export`` and ``import`` commands (admin key only):
``/api/export/request/zip``, ``/api/export/zip/<ts>``, ``/api/import/start_upload``,
``/api/import/upload_part``, ``/api/import/finish_upload`` and ``/api/perform_import``."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest
from reactive.export import jobs, positions
from reactive.export.access import admin_only


@admin_only("POST")
@transaction.non_atomic_requests
def request_export(request: HttpRequest) -> HttpResponse:
    if request.GET.get("includeStorage", "false") not in ("false", "true"):
        raise BadRequest("'includeStorage' must be true or false.")
    jobs.run_export()
    return JsonResponse({})


@admin_only("GET")
def download_export(request: HttpRequest, ts: str) -> HttpResponseBase:
    path = jobs.export_path(positions.parse(ts, "ts"))
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name,
                        content_type="application/zip")


@admin_only("POST")
def start_upload(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"uploadToken": jobs.start_upload()})


@admin_only("POST")
def upload_part(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("uploadToken") or ""
    number = request.GET.get("partNumber") or ""
    if not token or not number.isdigit() or not 1 <= int(number) <= 10_000:
        raise BadRequest("upload_part needs 'uploadToken' and a 'partNumber' from 1 to 10000.")
    limit = reactive_settings().EXPORT_MAX_UPLOAD_PART_BYTES
    data = request.read(limit + 1)
    if len(data) > limit:
        raise BadRequest(f"An upload part may hold at most {limit} bytes "
                         "(REACTIVE['EXPORT_MAX_UPLOAD_PART_BYTES']).",
                         code="PayloadTooLarge", http_status=413)
    return JsonResponse(jobs.add_part(token, int(number), data), safe=False)


@admin_only("POST")
def finish_upload(request: HttpRequest) -> HttpResponse:
    body = _json_object(request)
    spec, token, parts = body.get("import"), body.get("uploadToken"), body.get("partTokens")
    if not isinstance(spec, dict) or not isinstance(token, str) or not isinstance(parts, list):
        raise BadRequest("finish_upload needs 'import' (an object), 'uploadToken' and "
                         "'partTokens' (a list).")
    return JsonResponse({"importId": str(jobs.finish_upload(token, parts, spec))})


@admin_only("POST")
@transaction.non_atomic_requests
def perform_import(request: HttpRequest) -> HttpResponse:
    import_id = _json_object(request).get("importId")
    if not isinstance(import_id, str) or not import_id.isdigit():
        raise BadRequest("perform_import needs the 'importId' finish_upload returned.")
    try:
        jobs.perform_import(int(import_id))
    except BadRequest:
        raise
    except Exception as exc:  # recorded in the job; the CLI reads it from queryImport
        return JsonResponse({"code": "ImportFailed", "message": str(exc)}, status=400)
    return JsonResponse({})


def _json_object(request: HttpRequest) -> dict[str, Any]:
    raw = request.read(1024 * 1024 + 1)
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest("The request body is not valid JSON.", code="BadJson") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body
