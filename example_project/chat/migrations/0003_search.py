import django.contrib.postgres.indexes
import django.contrib.postgres.search
import pgvector.django
from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0002_demo_data"),
    ]

    operations = [
        VectorExtension(),
        migrations.AddField(
            model_name="message",
            name="embedding",
            field=pgvector.django.VectorField(blank=True, dimensions=64, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="message",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector("body", config="english"),
                name="chat_message_body_search"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=pgvector.django.HnswIndex(fields=["embedding"], name="chat_message_embedding_hnsw",
                                            opclasses=["vector_cosine_ops"]),
        ),
    ]
