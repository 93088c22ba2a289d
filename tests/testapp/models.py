"""Models used by the tests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from pgvector.django import HnswIndex, VectorField


class Item(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    data = models.JSONField(default=dict)
    uid = models.UUIDField(default=uuid.uuid4)

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    """A row per call: the write of the throughput benchmark and of most runtime tests."""

    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.body[:40]


class Account(models.Model):
    """A bank account: the contention benchmark and the write-skew tests move money here."""

    name = models.CharField(max_length=50, unique=True)
    balance = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.balance}"


class Attachment(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/", blank=True)

    def __str__(self) -> str:
        return self.file.name or ""


class Message(models.Model):
    """A chat message: the live-query benchmarks subscribe per channel and write here."""

    channel = models.CharField(max_length=100, db_index=True)
    body = models.TextField()

    def __str__(self) -> str:
        return f"{self.channel}: {self.body[:40]}"


class Sample(models.Model):
    """Random rows for the read-set soundness property test (tests/test_readset_soundness.py):
    one column of each kind a filter can compare."""

    num = models.IntegerField()
    label = models.CharField(max_length=20)
    maybe = models.IntegerField(null=True)
    at = models.DateTimeField()
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    flag = models.BooleanField(default=False)
    note = models.ForeignKey(Note, null=True, on_delete=models.SET_NULL, related_name="samples")

    def __str__(self) -> str:
        return f"{self.num} {self.label}"


class CIText(models.CharField):  # type: ignore[type-arg]
    """A case-insensitive text column (the citext extension): equal in Postgres, not in Python."""

    def db_type(self, connection: object) -> str:
        return "citext"


class Shape(models.Model):
    """Values whose comparison differs between Python and Postgres: JSON null, float text,
    numeric, time zones, UUIDs, arrays, case-insensitive text (tests/capture/test_soundness.py)."""

    payload = models.JSONField(null=True)
    weight = models.FloatField(default=0.0)
    price = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    at = models.DateTimeField(null=True)
    uid = models.UUIDField(null=True)
    tags = ArrayField(models.IntegerField(), default=list)
    handle = CIText(max_length=40, default="")

    def __str__(self) -> str:
        return f"shape {self.pk}"


class Legacy(models.Model):
    """A table another system created (migration 0004 makes it with SQL): still tracked."""

    name = models.CharField(max_length=40)
    size = models.IntegerField()

    class Meta:
        managed = False
        db_table = "testapp_legacy"

    def __str__(self) -> str:
        return self.name


class ShapeView(models.Model):
    """An unmanaged model over a database view joining shapes and legacy rows."""

    weight = models.FloatField()
    handle = models.CharField(max_length=40)
    name = models.CharField(max_length=40, null=True)  # noqa: DJ001  # the view's LEFT JOIN

    class Meta:
        managed = False
        db_table = "testapp_shape_view"

    def __str__(self) -> str:
        return f"view {self.pk}"


class Photo(models.Model):
    """A row that references a stored file: the file-storage tests and the orphan sweep."""

    file = models.ForeignKey(
        "reactive.StoredFile", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    caption = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.caption


class Document(models.Model):
    """A searchable text with an embedding: the live search and nearest-neighbour tests."""

    title = models.CharField(max_length=200, default="")
    body = models.TextField()
    tag = models.CharField(max_length=20, default="")
    rank = models.IntegerField(default=0)
    embedding = VectorField(dimensions=3, null=True)

    class Meta:
        indexes = [
            GinIndex(SearchVector("body", config="english"), name="document_body_search"),
            HnswIndex(name="document_embedding_hnsw", fields=["embedding"], m=16,
                      ef_construction=64, opclasses=["vector_cosine_ops"]),
        ]

    def __str__(self) -> str:
        return self.body[:40]


class Passage(models.Model):
    """The search benchmark's corpus (bench/search.py): text and a 384-dimension embedding."""

    body = models.TextField()
    embedding = VectorField(dimensions=384, null=True)

    class Meta:
        indexes = [
            GinIndex(SearchVector("body", config="english"), name="passage_body_search"),
            HnswIndex(name="passage_embedding_hnsw", fields=["embedding"],
                      opclasses=["vector_cosine_ops"]),
        ]

    def __str__(self) -> str:
        return self.body[:40]


class MovedNote(models.Model):
    """The model ``reactive_schema notes --model`` prints for the notes documents, moved into."""

    id = models.CharField(primary_key=True, max_length=32)
    creation_time = models.FloatField(db_index=True)
    body = models.TextField(blank=True)
    pinned = models.BooleanField(null=True, blank=True)
    tags = models.JSONField(blank=True, null=True)

    class Meta:
        ordering = ["creation_time", "id"]

    def __str__(self) -> str:
        return self.body
