"""URL patterns of the Convex HTTP API, file storage and HTTP actions; include them at the site
root: ``path("", include("reactive.urls"))`` (the official clients call ``/api/...``).

HTTP actions are served under ``REACTIVE['HTTP_ACTIONS_PREFIX']`` (read when this module is
first imported)."""

from __future__ import annotations

import re

from django.urls import path, re_path

from reactive.conf import reactive_settings
from reactive.http import actions, files, views

app_name = "reactive"

urlpatterns = [
    path("api/query", views.call_function, {"kind": "query"}, name="query"),
    path("api/mutation", views.call_function, {"kind": "mutation"}, name="mutation"),
    path("api/action", views.call_function, {"kind": "action"}, name="action"),
    path("api/function", views.call_function, name="function"),
    path("api/query_ts", views.query_ts, name="query_ts"),
    path("api/query_at_ts", views.query_at_ts, name="query_at_ts"),
    re_path(r"^api/run/(?P<path>[A-Za-z0-9_/]+)$", views.run_by_path, name="run"),
    path("api/storage/upload", files.upload, name="storage_upload"),
    path("api/storage/<uuid:file_id>", files.download, name="storage_file"),
    re_path(
        rf"^{re.escape(reactive_settings().HTTP_ACTIONS_PREFIX)}(?P<route>.*)$",
        actions.serve, name="http_action",
    ),
]
