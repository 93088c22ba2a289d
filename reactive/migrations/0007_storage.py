"""File storage: StoredFile (tracked: its changes reach live queries) and UploadClaim."""

import uuid

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reactive", "0006_soundness")]

    operations = [
        migrations.CreateModel(
            name="StoredFile",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(editable=False, max_length=255)),
                ("sha256", models.CharField(editable=False, max_length=64)),
                ("size", models.BigIntegerField(editable=False)),
                ("content_type", models.CharField(editable=False, max_length=255)),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False)),
            ],
            options={"verbose_name": "stored file"},
        ),
        migrations.CreateModel(
            name="UploadClaim",
            fields=[
                ("token", models.UUIDField(primary_key=True, serialize=False)),
                ("claimed_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
        ),
    ]
