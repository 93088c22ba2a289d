"""Exactly-once mutations per client session (G2): one row per (session id, request id)."""

from __future__ import annotations

from django.db import models


class SessionRequest(models.Model):
    """The stored outcome of a client's mutation, written in that mutation's transaction.

    A mutation re-sent after a reconnect with the same (session_id, request_id) finds this row
    and gets the stored result and timestamp instead of running again.
    """

    session_id = models.CharField(max_length=64)
    request_id = models.BigIntegerField()
    result = models.JSONField(null=True)
    ts = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session_id", "request_id"], name="reactive_session_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.request_id}"
