"""Documents read back as written: a jsonb integer beyond ±2**53 was a float (DocumentDecoder)."""

from django.db import migrations, models

import reactive.models.documents


class Migration(migrations.Migration):
    dependencies = [
        ("reactive", "0012_observe"),
    ]

    operations = [
        migrations.AlterField(
            model_name="document",
            name="data",
            field=models.JSONField(default=dict,
                                   decoder=reactive.models.documents.DocumentDecoder),
        ),
    ]
