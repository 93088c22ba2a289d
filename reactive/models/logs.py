"""The function log stream's rows: one per finished call, shared by every process (and the
admin's health page, a proxy of it)."""

from __future__ import annotations

from django.db import models


class FunctionLog(models.Model):
    """One call as ``npx convex logs`` shows it (``entry``), in commit order of ``id``.

    UNLOGGED (migration 0012) and untracked: a log, not data. Lost in a database crash, never
    replicated, and writing it wakes no Reactor. Rows are written in batches by each process's
    flusher (:mod:`reactive.observability.logstream`), which keeps the newest
    ``FUNCTION_LOGS_STREAM_SIZE`` rows.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    entry = models.JSONField()

    class Meta:
        verbose_name = "function log entry"
        verbose_name_plural = "function log entries"

    def __str__(self) -> str:
        return f"#{self.id} {self.entry.get('identifier', '?')}"


class Health(FunctionLog):
    """No table of its own: the admin's "health" page hangs off it (reactive.admin)."""

    class Meta:
        proxy = True
        verbose_name = "health"
        verbose_name_plural = "health"
