import django.contrib.postgres.indexes
import django.contrib.postgres.search
import pgvector.django
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('testapp', '0006_document'),
    ]

    operations = [
        migrations.CreateModel(
            name='Passage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('body', models.TextField()),
                ('embedding', pgvector.django.VectorField(dimensions=384, null=True)),
            ],
            options={
                'indexes': [
                    django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.search.SearchVector('body', config='english'), name='passage_body_search'),
                    pgvector.django.HnswIndex(fields=['embedding'], name='passage_embedding_hnsw', opclasses=['vector_cosine_ops']),
                ],
            },
        ),
    ]
