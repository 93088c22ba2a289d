import django.contrib.postgres.indexes
import django.contrib.postgres.search
import pgvector.django
from django.db import migrations, models
from pgvector.django import VectorExtension


class Migration(migrations.Migration):

    dependencies = [
        ('testapp', '0005_photo'),
    ]

    operations = [
        VectorExtension(),
        migrations.CreateModel(
            name='Document',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('title', models.CharField(default='', max_length=200)),
                ('body', models.TextField()),
                ('tag', models.CharField(default='', max_length=20)),
                ('rank', models.IntegerField(default=0)),
                ('embedding', pgvector.django.VectorField(dimensions=3, null=True)),
            ],
            options={
                'indexes': [
                    django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.search.SearchVector('body', config='english'), name='document_body_search'),
                    pgvector.django.HnswIndex(ef_construction=64, fields=['embedding'], m=16, name='document_embedding_hnsw', opclasses=['vector_cosine_ops']),
                ],
            },
        ),
    ]
