"""URL patterns of the Convex HTTP API, file storage and HTTP actions; include them at the site
root: ``path("", include("reactive.urls"))`` (the official clients call ``/api/...``).

HTTP actions are served under ``REACTIVE['HTTP_ACTIONS_PREFIX']`` (read when this module is
first imported)."""

from __future__ import annotations

import re

from django.urls import path, re_path

from reactive.conf import reactive_settings
from reactive.export import cli_views
from reactive.export import views as export_views
from reactive.http import actions, files, views
from reactive.observability import views as observability_views

app_name = "reactive"

urlpatterns = [
    path("api/query", views.call_function, {"kind": "query"}, name="query"),
    path("api/mutation", views.call_function, {"kind": "mutation"}, name="mutation"),
    path("api/action", views.call_function, {"kind": "action"}, name="action"),
    path("api/function", views.call_function, name="function"),
    path("api/query_ts", views.query_ts, name="query_ts"),
    path("api/query_at_ts", views.query_at_ts, name="query_at_ts"),
    path("api/json_schemas", export_views.json_schemas, name="json_schemas"),
    path("api/list_snapshot", export_views.list_snapshot, name="list_snapshot"),
    path("api/document_deltas", export_views.document_deltas, name="document_deltas"),
    path("api/export/request/zip", cli_views.request_export, name="export_request"),
    path("api/export/zip/<str:ts>", cli_views.download_export, name="export_download"),
    path("api/import/start_upload", cli_views.start_upload, name="import_start"),
    path("api/import/upload_part", cli_views.upload_part, name="import_part"),
    path("api/import/finish_upload", cli_views.finish_upload, name="import_finish"),
    path("api/perform_import", cli_views.perform_import, name="perform_import"),
    path("api/stream_function_logs", observability_views.stream_function_logs,
         name="stream_function_logs"),
    path("api/metrics", observability_views.metrics, name="metrics"),
    re_path(r"^api/run/(?P<path>[A-Za-z0-9_/]+)$", views.run_by_path, name="run"),
    path("api/storage/upload", files.upload, name="storage_upload"),
    path("api/storage/<uuid:file_id>", files.download, name="storage_file"),
    re_path(
        rf"^{re.escape(reactive_settings().HTTP_ACTIONS_PREFIX)}(?P<route>.*)$",
        actions.serve, name="http_action",
    ),
]
