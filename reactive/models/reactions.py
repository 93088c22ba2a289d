"""Server-side reactions (``@on_change``): one row per reaction holding its cursor in the log.

The cursor is a snapshot plus a position inside the window being drained::

    changes visible in ``snapshot``                      done
    changes visible in ``window_end``, not in ``snapshot``:
        ordered by (txid, log id); those up to ``position`` done, the rest pending
    changes not visible in ``window_end``                pending (a later window)

It moves only inside the handler's own SERIALIZABLE transaction, so a handled change is never
handled again and an unhandled one is never lost. States::

    active ──► failed (attempts exhausted; ``retry`` or ``skip``) ──► active
       └─────► fallen_behind (the log it needed was pruned; ``skip``) ──► active
"""

from __future__ import annotations

from django.db import models


class ReactionState(models.TextChoices):
    ACTIVE = "active", "active"
    FAILED = "failed", "failed"
    FALLEN_BEHIND = "fallen_behind", "fallen behind"


class Reaction(models.Model):
    """The cursor and health of one ``@on_change`` handler (``name`` is the handler's name).

    ``own_txids`` lists the transactions in which this handler ran that may still appear in a
    later window: their changes are the handler's own writes, which never fire it again.
    ``failed_change`` describes the change (or batch) the last failure was about.
    """

    name = models.CharField(max_length=512, unique=True)
    state = models.CharField(
        max_length=16, choices=ReactionState.choices, default=ReactionState.ACTIVE
    )
    snapshot = models.TextField()
    cursor_at = models.DateTimeField()
    window_end = models.TextField(blank=True, default="")
    window_at = models.DateTimeField(null=True, blank=True)
    position_txid = models.BigIntegerField(default=0)
    position_id = models.BigIntegerField(default=0)
    own_txids = models.JSONField(default=list, blank=True)
    handled = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    failed_change = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reactive_reaction"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"reaction {self.name} ({self.state})"
