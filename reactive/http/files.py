"""The file-storage endpoints: ``POST /api/storage/upload?token=...`` (the upload URL that
``generate_upload_url`` returns) and ``GET /api/storage/<id>?exp&sig`` (what ``get_url``
returns): streamed bodies, Range, ETag, Content-Type."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import IO

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest, RequestError
from reactive.http.plumbing import error_response, with_cors
from reactive.models import StoredFile, UploadClaim
from reactive.storage import files, links

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@csrf_exempt  # authorised by the signed token in the URL, never by cookies
@transaction.non_atomic_requests
def upload(request: HttpRequest) -> HttpResponse:
    """Store the request body as a new file; answer ``{"storageId": "..."}``.

    Refused before the body is read: 403 for an expired, reused or tampered URL, 415 for a
    content type outside ``STORAGE_ALLOWED_CONTENT_TYPES``, 413 for a declared length over
    ``STORAGE_MAX_UPLOAD_BYTES``. A body that turns out longer is cut off at the limit (413).
    """
    if request.method == "OPTIONS":
        return with_cors(request, HttpResponse(status=204), preflight=True)
    try:
        if request.method != "POST":
            raise BadRequest(f"{request.method} is not allowed here; use POST.",
                             code="MethodNotAllowed", http_status=405)
        file_id, content_type, limit = check_upload(request)
        claim(file_id)
        stored = files.store(_body(request), content_type=content_type, file_id=file_id,
                             max_bytes=limit)
        try:
            stored.save(force_insert=True)
        except BaseException:
            files.discard(stored.name)
            raise
    except RequestError as exc:
        return with_cors(request, error_response(exc))
    return with_cors(request, JsonResponse({"storageId": str(stored.id)}))


def check_upload(request: HttpRequest) -> tuple[uuid.UUID, str, int]:
    """The checks that need only the URL and headers; return (file id, content type, limit)."""
    file_id = links.read_upload_token(request.GET.get("token"))
    content_type = (request.content_type or "application/octet-stream").lower()
    if not files.content_type_allowed(content_type):
        raise BadRequest(
            f"Files of type {content_type!r} are not accepted "
            "(REACTIVE['STORAGE_ALLOWED_CONTENT_TYPES']).",
            code="UnsupportedMediaType", http_status=415,
        )
    limit = reactive_settings().STORAGE_MAX_UPLOAD_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise files.too_large(limit)
    return file_id, content_type, limit


def claim(file_id: uuid.UUID) -> None:
    """Spend the upload URL (its own committed row), or refuse one already used (403)."""
    try:
        with transaction.atomic():
            UploadClaim.objects.create(token=file_id)
    except IntegrityError:
        raise BadRequest("This upload URL was already used; ask for a new one.",
                         code="UploadUrlUsed", http_status=403) from None


def _body(request: HttpRequest) -> Iterator[bytes]:
    return iter(lambda: request.read(files.CHUNK_BYTES), b"")


@csrf_exempt
async def download(request: HttpRequest, file_id: uuid.UUID) -> HttpResponseBase:
    """Serve a stored file: GET and HEAD, one byte range, ``If-None-Match``."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"code": "MethodNotAllowed",
                                 "message": f"{request.method} is not allowed; use GET."},
                                status=405)
        response["Allow"] = "GET, HEAD"
        return response
    try:
        expires = links.check_download(file_id, request.GET.get("exp"), request.GET.get("sig"))
    except RequestError as exc:
        return with_cors(request, error_response(exc))
    stored = await StoredFile.objects.filter(pk=file_id).afirst()
    if stored is None:
        return with_cors(request, JsonResponse(
            {"code": "StorageFileNotFound", "message": "No stored file has this id."}, status=404
        ))
    return with_cors(request, await _file_response(request, stored, expires))


async def _file_response(
    request: HttpRequest, stored: StoredFile, expires: int
) -> HttpResponseBase:
    etag = f'"{stored.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={max(0, expires - int(time.time()))}",
        "X-Content-Type-Options": "nosniff",
        # Uploaded HTML or SVG must not run as a page of this origin.
        "Content-Security-Policy": "sandbox",
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return HttpResponse(status=304, headers=headers)
    span = _range(request.headers.get("Range"), stored.size)
    if span is None:
        response = HttpResponse(status=416, headers=headers)
        response["Content-Range"] = f"bytes */{stored.size}"
        return response
    start, end, partial = span
    headers["Content-Length"] = str(end - start)
    if partial:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
    status = 206 if partial else 200
    if request.method == "HEAD":
        return HttpResponse(status=status, headers=headers, content_type=stored.content_type)
    handle = await sync_to_async(files.open_file)(stored)
    return StreamingHttpResponse(
        _stream(handle, start, end), status=status, headers=headers,
        content_type=stored.content_type,
    )


def _range(header: str | None, size: int) -> tuple[int, int, bool] | None:
    """(start, end exclusive, partial) for a single ``bytes=`` range; None: unsatisfiable.

    Several ranges, or a header we do not understand, get the whole file (RFC 9110 §14.2
    lets a server ignore Range)."""
    match = RANGE_RE.match(header or "")
    if match is None or (not match[1] and not match[2]):
        return 0, size, False
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size, True) if suffix > 0 and size > 0 else None
    start = int(match[1])
    end = min(int(match[2]) + 1, size) if match[2] else size
    if start >= size or end <= start:
        return None
    return start, end, True


async def _stream(handle: IO[bytes], start: int, end: int) -> AsyncIterator[bytes]:
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        await sync_to_async(handle.seek, thread_sensitive=False)(start)
        left = end - start
        while left > 0:
            chunk = await read(min(files.CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()
