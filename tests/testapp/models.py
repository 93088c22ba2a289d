"""Models used by the tests."""

from __future__ import annotations

import uuid

from django.conf import settings
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
