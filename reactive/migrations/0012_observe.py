"""The function log stream shared by all processes: FunctionLog, an UNLOGGED, untracked table;
Health, its proxy, for the admin's health page."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reactive", "0011_documents")]

    operations = [
        migrations.CreateModel(
            name="FunctionLog",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("entry", models.JSONField()),
            ],
            options={
                "verbose_name": "function log entry",
                "verbose_name_plural": "function log entries",
            },
        ),
        migrations.CreateModel(
            name="Health",
            fields=[],
            options={"verbose_name": "health", "verbose_name_plural": "health", "proxy": True,
                     "indexes": [], "constraints": []},
            bases=("reactive.functionlog",),
        ),
        # A log: no WAL (cheaper to write, emptied by a crash, not replicated).
        migrations.RunSQL(
            "ALTER TABLE reactive_functionlog SET UNLOGGED",
            "ALTER TABLE reactive_functionlog SET LOGGED",
        ),
    ]
