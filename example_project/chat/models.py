"""A small chat: channels, messages (some expire, some carry an image), and read markers for
unread counts."""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from pgvector.django import HnswIndex, VectorField


class Channel(models.Model):
    name = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.name}"


class Message(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    author_name = models.CharField(max_length=150, blank=True)
    body = models.TextField(max_length=2000, blank=True)
    # An attached image (ctx.storage); the foreign key is what keeps it from the orphan sweep.
    image = models.ForeignKey(
        "reactive.StoredFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # chat.embedding.embed(body): "similar messages" by cosine distance
    embedding = VectorField(dimensions=64, null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["channel", "-id"]),
            GinIndex(SearchVector("body", config="english"), name="chat_message_body_search"),
            HnswIndex(name="chat_message_embedding_hnsw", fields=["embedding"],
                      opclasses=["vector_cosine_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.body[:40]}"


class ReadMarker(models.Model):
    """The newest message a user has seen in a channel; unread counts are computed from it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE)
    last_read_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "channel"], name="chat_one_marker_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.channel} up to {self.last_read_id}"
