"""The Django admin for scheduled jobs, crons and cron runs (read-only lists with filters and
search, and an action that cancels pending jobs), for stored files (with image previews), for
reactions (retry or skip a parked one) and data migrations, and the staff-only health page."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.utils.html import format_html

from reactive.documents import shape as shapes
from reactive.exceptions import ReactionError
from reactive.functions.scheduler import cancel_pending
from reactive.models import (
    Cron,
    CronRun,
    DataMigration,
    Document,
    DocumentShape,
    Health,
    Job,
    JobState,
    Reaction,
    StoredFile,
)
from reactive.reactions import control
from reactive.storage import files


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    """History is written by the scheduler, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(_ReadOnly):
    list_display = (
        "id",
        "function",
        "state",
        "due_at",
        "attempts",
        "started_at",
        "finished_at",
        "parent",
    )
    list_filter = ("state", "due_at", "finished_at")
    search_fields = ("=id", "function", "error")
    date_hierarchy = "due_at"
    list_select_related = ("parent",)
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected pending jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        pending = list(queryset.filter(state=JobState.PENDING).values_list("pk", flat=True))
        canceled = cancel_pending(pending)
        left = queryset.count() - canceled
        self.message_user(request, f"Canceled {canceled} pending job(s).", messages.SUCCESS)
        if left:
            self.message_user(
                request, f"{left} job(s) were not pending and were left alone.", messages.WARNING
            )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _RunInline(admin.TabularInline):  # type: ignore[type-arg]
    model = CronRun
    fields = ("scheduled_for", "status", "job", "reason")
    readonly_fields = fields
    ordering = ("-scheduled_for",)
    extra = 0
    max_num = 0
    show_change_link = True


@admin.register(Cron)
class CronAdmin(_ReadOnly):
    list_display = ("name", "schedule", "function", "active", "next_run_at", "last_run_at")
    list_filter = ("active",)
    search_fields = ("name", "function")
    inlines = [_RunInline]


@admin.register(CronRun)
class CronRunAdmin(_ReadOnly):
    list_display = ("cron", "scheduled_for", "status", "outcome", "job", "reason")
    list_filter = ("status", "job__state", "cron")
    search_fields = ("cron__name", "reason")
    list_select_related = ("cron", "job")
    date_hierarchy = "scheduled_for"

    @admin.display(description="outcome")
    def outcome(self, run: CronRun) -> str:
        return run.outcome


@admin.register(Reaction)
class ReactionAdmin(_ReadOnly):
    """Reactions with their state, lag and the change and traceback of the last failure."""

    list_display = ("name", "state", "cursor_at", "handled", "attempts", "next_attempt_at")
    list_filter = ("state",)
    search_fields = ("name", "error")
    readonly_fields = ("name", "state", "cursor_at", "handled", "attempts", "next_attempt_at",
                       "failed_change", "error", "snapshot", "window_end", "updated_at")
    fields = readonly_fields
    actions = ["retry_reactions", "skip_failed_changes"]

    @admin.action(description="Retry the selected parked reactions")
    def retry_reactions(self, request: HttpRequest, queryset: QuerySet[Reaction]) -> None:
        self._each(request, queryset, control.retry, "retried")

    @admin.action(description="Skip the failed change of the selected reactions")
    def skip_failed_changes(self, request: HttpRequest, queryset: QuerySet[Reaction]) -> None:
        self._each(request, queryset, control.skip, "skipped")

    def _each(self, request: HttpRequest, queryset: QuerySet[Reaction], do: Any,
              done: str) -> None:
        for name in queryset.values_list("name", flat=True):
            try:
                do(name)
                self.message_user(request, f"{name}: {done}.", messages.SUCCESS)
            except ReactionError as exc:
                self.message_user(request, str(exc), messages.ERROR)


@admin.register(DataMigration)
class DataMigrationAdmin(_ReadOnly):
    list_display = ("name", "state", "phase", "done", "total", "skipped", "dry_run",
                    "failed_pk", "heartbeat_at")
    list_filter = ("state", "dry_run")
    search_fields = ("name", "error", "failed_pk")


@admin.register(StoredFile)
class StoredFileAdmin(_ReadOnly):
    """Files are added through upload URLs and ``ctx.storage``; deleting one here deletes its
    bytes once the delete commits."""

    list_display = ("id", "content_type", "size", "created_at", "preview")
    list_filter = ("content_type", "created_at")
    search_fields = ("=id", "sha256", "content_type")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "name", "sha256", "size", "content_type", "created_at", "preview")

    @admin.display(description="preview")
    def preview(self, stored: StoredFile) -> str:
        url = files.url(stored)
        if stored.content_type.startswith("image/"):
            return format_html('<a href="{}"><img src="{}" alt="" style="max-height: 80px; '
                               'max-width: 160px"></a>', url, url)
        return format_html('<a href="{}">open</a>', url)

    def delete_model(self, request: HttpRequest, obj: StoredFile) -> None:
        name = obj.name
        super().delete_model(request, obj)
        transaction.on_commit(lambda: files.discard(name))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StoredFile]) -> None:
        names = list(queryset.values_list("name", flat=True))
        super().delete_queryset(request, queryset)
        transaction.on_commit(lambda: _discard_all(names))


def _discard_all(names: list[str]) -> None:
    for name in names:
        files.discard(name)


@admin.register(DocumentShape)
class DocumentShapeAdmin(_ReadOnly):
    """The shape of each schema-free table, widened as documents are written; enforce it with
    ``manage.py reactive_schema TABLE --enforce``."""

    list_display = ("table", "top_fields", "enforced", "updated_at")
    list_filter = ("enforced",)
    search_fields = ("table",)
    readonly_fields = ("table", "enforced", "updated_at", "json_schema")
    exclude = ("shape",)

    @admin.display(description="top-level fields")
    def top_fields(self, obj: DocumentShape) -> str:
        found = obj.shape.get("fields", {})
        return ", ".join(f"{name}{'?' if e['optional'] else ''}: "
                         f"{'|'.join(e['shape']['types'])}" for name, e in found.items())

    @admin.display(description="JSON Schema")
    def json_schema(self, obj: DocumentShape) -> str:
        text = json.dumps(shapes.json_schema(obj.shape, obj.table), indent=2)
        return format_html("<pre>{}</pre>", text)


@admin.register(Document)
class DocumentAdmin(_ReadOnly):
    """Documents of the schema-free tables; written by ``ctx.db`` in mutations."""

    list_display = ("id", "table", "creation_time")
    list_filter = ("table",)
    search_fields = ("=id", "=table")
    readonly_fields = ("id", "table", "creation_time", "data")


@admin.register(Health)
class HealthAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Reactor, scheduler and function figures, reactions and data migrations, on one page
    (``reactive.observability.health``); any active staff member may look, nobody may edit."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from reactive.observability import health

        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        context = {**self.admin_site.each_context(request), "title": "Health",
                   "opts": self.model._meta, "health": health.report(),
                   **(extra_context or {})}
        return TemplateResponse(request, "admin/reactive/health.html", context)
