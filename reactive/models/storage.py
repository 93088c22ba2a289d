"""Stored files: the metadata row of each file in ``ctx.storage`` (the bytes live in Django's
storage) and the claims that make upload URLs single-use."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class StoredFile(models.Model):
    """A file stored through ``ctx.storage``; its ``id`` is the storage id clients see.

    A tracked table like any other: a query that lists files or calls ``get_url`` re-runs
    when a file is added or deleted. ``name`` is the path in the storage backend; the row is
    written only after the bytes are saved, and the bytes are deleted after the row's delete
    commits.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    size = models.BigIntegerField(editable=False)
    content_type = models.CharField(max_length=255, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)

    class Meta:
        verbose_name = "stored file"

    def __str__(self) -> str:
        return f"{self.id} ({self.content_type}, {self.size} bytes)"


class UploadClaim(models.Model):
    """One row per upload URL that has been used: a second use finds it and is refused.

    Written in its own transaction before the body is read, so two concurrent uses of one
    URL cannot both proceed. Rows older than ``STORAGE_UPLOAD_URL_TTL`` are pruned with the
    orphans (their URLs have expired anyway).
    """

    token = models.UUIDField(primary_key=True)
    claimed_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return str(self.token)
