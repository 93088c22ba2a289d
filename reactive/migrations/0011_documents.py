"""Schema-free documents: Document (tracked: its changes reach live queries) and DocumentShape."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reactive", "0010_notify_tables")]

    operations = [
        migrations.CreateModel(
            name="Document",
            fields=[
                ("id", models.CharField(editable=False, max_length=32, primary_key=True, serialize=False)),
                ("table", models.CharField(editable=False, max_length=64)),
                ("creation_time", models.FloatField(editable=False)),
                ("data", models.JSONField(default=dict)),
            ],
            options={
                "verbose_name": "document",
                "indexes": [models.Index(fields=["table", "creation_time"], name="reactive_doc_table_time")],
            },
        ),
        migrations.CreateModel(
            name="DocumentShape",
            fields=[
                ("table", models.CharField(editable=False, max_length=64, primary_key=True, serialize=False)),
                ("shape", models.JSONField(default=dict)),
                ("enforced", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "document shape"},
        ),
    ]
