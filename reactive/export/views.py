"""The streaming-export HTTP API (Convex's): ``GET /api/json_schemas``, ``/api/list_snapshot``
and ``/api/document_deltas``, admin key only, ``format=json``."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from reactive.exceptions import BadRequest
from reactive.export import positions, stream
from reactive.export.access import admin_only
from reactive.export.tables import exported_tables


@admin_only("GET")
def json_schemas(request: HttpRequest) -> HttpResponse:
    """``{<table>: <JSON Schema>}``; ``deltaSchema=true`` adds ``_ts`` and ``_deleted``."""
    _check_format(request)
    delta = request.GET.get("deltaSchema", "false").lower() in {"true", "1"}
    return JsonResponse({name: t.schema(delta=delta) for name, t in exported_tables().items()})


@admin_only("GET")
@transaction.non_atomic_requests
def list_snapshot(request: HttpRequest) -> HttpResponse:
    """``{values, cursor, hasMore, snapshot}``: one page of a listing at one snapshot."""
    _check_format(request)
    raw_snapshot = request.GET.get("snapshot") or None
    snapshot = positions.parse(raw_snapshot, "snapshot") if raw_snapshot else None
    page = stream.list_snapshot(
        request.GET.get("tableName") or None, snapshot, request.GET.get("cursor") or None
    )
    return JsonResponse({"values": page.values, "cursor": page.cursor,
                         "hasMore": page.has_more, "snapshot": page.snapshot})


@admin_only("GET")
@transaction.non_atomic_requests
def document_deltas(request: HttpRequest) -> HttpResponse:
    """``{values, cursor, hasMore}``: the changes after ``cursor``."""
    _check_format(request)
    ts = positions.parse(request.GET.get("cursor"), "cursor")
    page = stream.document_deltas(ts, request.GET.get("tableName") or None)
    return JsonResponse({"values": page.values, "cursor": page.cursor,
                         "hasMore": page.has_more})


def _check_format(request: HttpRequest) -> None:
    fmt = request.GET.get("format", "json")
    if fmt != "json":
        raise BadRequest(f"Unknown format {fmt!r}: only 'json' is supported.", code="BadFormat")
